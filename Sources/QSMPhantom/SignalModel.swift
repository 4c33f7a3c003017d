import QSMCore

/// Acquisition settings of a simulated multi-echo GRE scan.
///
/// S_n = M0·exp(−TE_n·R2*)·exp(i·(φ0 + s·2π·γ̄·B0·TE_n·Δb·1e-6)) with γ̄ in Hz/T, B0 in T, TE in s,
/// Δb in ppm and s the phase sign of `conventions` (QSM.md §1.1; qsm-forward `generate_signal`
/// uses the same form with γ̄ = 42.58 MHz/T and s = +1).
public struct AcquisitionSettings: Sendable, Hashable {
    /// Echo times, s (strictly increasing, positive).
    public var echoTimes: [Double] = [0.004, 0.008, 0.012, 0.016]
    /// Main field strength, T.
    public var fieldStrength: Double = 3
    /// γ̄, D(0) and phase sign.
    public var conventions = Conventions()
    /// Peak SNR per echo: complex Gaussian noise with σ = max|S_n| / snr in each of the real and
    /// imaginary channels (qsm-forward's `add_noise` definition); `.infinity` = noise-free.
    public var snr: Double = .infinity
    /// Noise seed; noise depends only on (seed, echo, voxel index), never on the thread count.
    public var seed: UInt64 = 0
    /// Adds a smooth echo-independent phase offset φ0 (see `SignalModel.phaseOffset`).
    public var phaseOffset: Bool = false
    /// Removes the least-squares second-order polynomial of the total field inside the mask
    /// before the signal is made, as a second-order shim would (qsm-forward `--generate-shim-field`).
    public var shim: Bool = false
    /// Includes the background field of sources outside the mask (air, skull, scalp).
    public var background: Bool = true
    /// Acquired matrix when it is smaller than the phantom's: the complex signal of each echo is
    /// cropped to the central k-space of this shape (a lower acquired resolution, same field of view).
    public var acquiredShape: SIMD3<Int>?

    /// The defaults: 4 echoes 4–16 ms at 3 T, no noise, no φ0, no shim, background on.
    public init() {}

    /// Throws the first unusable setting as a `QSMError` naming its CLI option.
    public func validate() throws(QSMError) {
        guard !echoTimes.isEmpty else { throw .invalidOption("--te", "no echo time given") }
        for (i, te) in echoTimes.enumerated() {
            guard te.isFinite, te > 0 else { throw .invalidOption("--te", "echo time \(te) s must be positive") }
            guard te < 1 else { throw .invalidOption("--te", "\(te) is not in seconds; did you mean \(te / 1000)?") }
            if i > 0 && te <= echoTimes[i - 1] {
                throw .invalidOption("--te", "echo times must increase (\(echoTimes[i - 1]) then \(te))")
            }
        }
        guard fieldStrength.isFinite, fieldStrength > 0 else {
            throw .invalidOption("--b0", "\(fieldStrength) T must be positive")
        }
        guard snr > 0, !snr.isNaN else { throw .invalidOption("--snr", "\(snr) must be positive (or inf)") }
        guard conventions.gyromagneticRatio.isFinite, conventions.gyromagneticRatio > 0 else {
            throw .invalidOption("gyromagnetic ratio", "\(conventions.gyromagneticRatio) MHz/T must be positive")
        }
        if let shape = acquiredShape, !all(shape .> 0) {
            throw .invalidOption("--acquired-matrix", "\(shape) must be positive")
        }
    }
}

/// The pieces of the multi-echo signal model, usable one by one.
public enum SignalModel {
    /// Smooth echo-independent phase offset φ0 (rad) over the grid: a quadratic plus a linear term
    /// centred on the mask's centroid, scaled by the mask's bounding-box half extents, spanning about
    /// π across the mask, like the receiver phase of a combined coil image (qsm-forward adds a
    /// similar quadratic scaled to π over its mask).
    public static func phaseOffset(mask: Mask) -> Volume<Float> {
        let grid = mask.grid
        var low = SIMD3<Double>(repeating: .infinity), high = SIMD3<Double>(repeating: -.infinity)
        var sum = SIMD3<Double>(repeating: 0)
        var count = 0.0
        for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x where mask[x, y, z] {
            let p = PartialVolume.position(x, y, z, grid: grid)
            low = pointwiseMin(low, p); high = pointwiseMax(high, p); sum += p; count += 1
        } } }
        if count == 0 {
            low = PartialVolume.position(0, 0, 0, grid: grid)
            high = -low
            count = 1
        }
        let centre = sum / count
        let half = pointwiseMax((high - low) / 2, grid.voxelSize)
        var out = Volume<Float>(zeros: grid)
        for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
            let u = (PartialVolume.position(x, y, z, grid: grid) - centre) / half
            let quadratic = 0.6 * u.x * u.x + 0.25 * u.y * u.y + 0.4 * u.z * u.z + 0.3 * u.x * u.y
            out[x, y, z] = Float(Double.pi * (quadratic + 0.35 * u.x - 0.2 * u.z))
        } } }
        return out
    }

    /// The least-squares fit of 1, x, y, z, x², y², z², xy, xz, yz to `field` inside `mask`
    /// (coordinates normalised to the grid's half extent; solved in Double).
    public static func secondOrderFit(_ field: Volume<Float>, mask: Mask) throws(QSMError) -> Volume<Float> {
        let grid = field.grid
        let scale = SIMD3<Double>(Double(grid.shape.x), Double(grid.shape.y), Double(grid.shape.z)) * grid.voxelSize / 2
        func basis(_ x: Int, _ y: Int, _ z: Int) -> [Double] {
            let p = PartialVolume.position(x, y, z, grid: grid) / scale
            return [1, p.x, p.y, p.z, p.x * p.x, p.y * p.y, p.z * p.z, p.x * p.y, p.x * p.z, p.y * p.z]
        }
        var normal = [[Double]](repeating: [Double](repeating: 0, count: 10), count: 10)
        var rhs = [Double](repeating: 0, count: 10)
        var inside = 0
        for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x where mask[x, y, z] {
            let b = basis(x, y, z), f = Double(field[x, y, z])
            for i in 0..<10 { rhs[i] += b[i] * f; for j in 0..<10 { normal[i][j] += b[i] * b[j] } }
            inside += 1
        } } }
        guard inside >= 10 else { throw .invalidParameter("shim", "the mask has \(inside) voxels; a second-order fit needs 10") }
        guard let c = solve(normal, rhs) else { throw .invalidParameter("shim", "the mask is too thin for a second-order fit") }
        var out = Volume<Float>(zeros: grid)
        for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
            let b = basis(x, y, z)
            out[x, y, z] = Float((0..<10).reduce(0) { $0 + c[$1] * b[$1] })
        } } }
        return out
    }

    /// Adds complex Gaussian noise of standard deviation `sigma` per channel to echo `echo`.
    ///
    /// Deviates come from `CounterGaussian(seed)` addressed by (echo, voxel index), so the result is
    /// bit-identical on any thread count.
    public static func addNoise(_ signal: inout [Complex<Float>], sigma: Double, seed: UInt64, echo: Int) {
        guard sigma > 0 else { return }
        let source = CounterGaussian(seed: seed)
        signal.withUnsafeMutableBufferPointer { buffer in
            let p = SendablePointer(buffer.baseAddress!)
            parallelFor(0..<buffer.count) { range in
                for i in range {
                    let (a, b) = source.pair(stream: UInt64(echo), index: UInt64(i))
                    p[i] = Complex(Float(Double(p[i].real) + sigma * a), Float(Double(p[i].imaginary) + sigma * b))
                }
            }
        }
    }

    /// Crops the centred k-space of a complex volume to `shape` (same field of view, larger voxels).
    ///
    /// Amplitudes are preserved (the inverse transform is rescaled by N_acquired/N_phantom). Voxel j of
    /// the result sits where voxel j·N/n of the input sat, so the affine keeps its origin and its
    /// columns grow by N/n.
    public static func cropKSpace(_ data: [Complex<Float>], grid: Grid, to shape: SIMD3<Int>) throws(QSMError) -> [Complex<Float>] {
        let n = grid.shape
        guard all(shape .<= n) else {
            throw .invalidOption("--acquired-matrix", "\(shape) is larger than the phantom matrix \(grid.shapeText)")
        }
        let big = try FFT<Float>(shape: n), small = try FFT<Float>(shape: shape)
        let spectrum = big.transform(data, .forward)
        var cropped = [Complex<Float>](repeating: .zero, count: shape.x * shape.y * shape.z)
        // Keep frequencies −⌊m/2⌋ … ⌈m/2⌉−1 of each axis, the set fftfreq gives the small grid.
        func source(_ index: Int, _ m: Int, _ full: Int) -> Int {
            let frequency = index < (m + 1) / 2 ? index : index - m
            return frequency >= 0 ? frequency : frequency + full
        }
        for z in 0..<shape.z {
            let sz = source(z, shape.z, n.z)
            for y in 0..<shape.y {
                let sy = source(y, shape.y, n.y)
                for x in 0..<shape.x {
                    cropped[x + shape.x * (y + shape.y * z)] = spectrum[source(x, shape.x, n.x) + n.x * (sy + n.y * sz)]
                }
            }
        }
        var out = small.transform(cropped, .backward)
        let factor = Float(Double(shape.x * shape.y * shape.z) / Double(n.x * n.y * n.z))
        for i in out.indices { out[i] = Complex(out[i].real * factor, out[i].imaginary * factor) }
        return out
    }

    /// The grid of a k-space-cropped acquisition of `grid` with `shape` voxels.
    public static func croppedGrid(_ grid: Grid, to shape: SIMD3<Int>) -> Grid {
        let ratio = SIMD3<Double>(Double(grid.shape.x) / Double(shape.x), Double(grid.shape.y) / Double(shape.y),
                                  Double(grid.shape.z) / Double(shape.z))
        var affine = grid.affine
        for r in 0..<3 { for c in 0..<3 { affine[r, c] *= ratio[c] } }
        return Grid(shape: shape, voxelSize: grid.voxelSize * ratio, affine: affine)
    }

    static func solve(_ a: [[Double]], _ b: [Double]) -> [Double]? {
        var m = a, v = b
        let n = v.count
        for column in 0..<n {
            var pivot = column
            for row in column + 1..<n where abs(m[row][column]) > abs(m[pivot][column]) { pivot = row }
            guard abs(m[pivot][column]) > 1e-12 * max(1, abs(m[0][0])) else { return nil }
            m.swapAt(column, pivot); v.swapAt(column, pivot)
            for row in column + 1..<n {
                let f = m[row][column] / m[column][column]
                if f == 0 { continue }
                for k in column..<n { m[row][k] -= f * m[column][k] }
                v[row] -= f * v[column]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = v[row]
            for k in row + 1..<n { s -= m[row][k] * x[k] }
            x[row] = s / m[row][row]
        }
        return x
    }
}
