import QSMCore

/// The spherical mean value (SMV) kernel: a normalised discrete ball of radius r (mm), in k-space.
///
/// s_r(x) = 1/|B_r| for |x| ≤ r on the voxel lattice (physical units), else 0, so Σ s_r = 1 and
/// s_r ⊛ h = h for harmonic h wherever the ball lies inside the region (QSM.md §6). Built in image
/// space and transformed (1 FFT), as QSM.jl `smv_kernel` and QSM.rs `kernels/smv.rs` do, so the
/// discrete mean-value property holds exactly for discretely harmonic fields up to rounding.
struct SMVKernel: Sendable {
    /// Ŝ_r on the half spectrum (real: the ball is symmetric).
    let spectrum: [Float]
    /// Number of voxels in the ball, |B_r|.
    let voxelCount: Int
    /// Ball radius in voxels along each axis, rounded up.
    let reach: SIMD3<Int>

    /// Writes Ŝ_r of the ball of `radius` mm into `spectrum` and returns |B_r|; throws (naming
    /// `parameter`) if the ball is one voxel or does not fit in the grid. `ball` must be all zeros
    /// and is returned so; `scratch` is overwritten. No allocation beyond the offset list.
    static func build(radius: Double, voxelSize: SIMD3<Double>, spectral: Spectral, ball: inout [Float],
                      scratch: inout [Complex<Float>], into spectrum: inout [Float], parameter: String) throws(QSMError) -> Int {
        let count = try buildTransform(radius: radius, voxelSize: voxelSize, spectral: spectral, ball: &ball,
                                       into: &scratch, parameter: parameter)
        scratch.withUnsafeBufferPointer { b in spectrum.withUnsafeMutableBufferPointer { sb in
            let p = ReadPointer(b.baseAddress!), sp = SendablePointer(sb.baseAddress!)
            parallelFor(0..<sb.count) { r in for i in r { sp[i] = p[i].real } }
        } }
        return count
    }

    /// Writes F[s_r] (complex; its real part is Ŝ_r, the imaginary part rounding) into `transform`
    /// and returns |B_r|, for callers that read the real part where they use it instead of
    /// extracting it. Same conditions as `build`.
    static func buildTransform(radius: Double, voxelSize: SIMD3<Double>, spectral: Spectral, ball: inout [Float],
                               into transform: inout [Complex<Float>], parameter: String) throws(QSMError) -> Int {
        let reach = Self.reach(radius: radius, voxelSize: voxelSize)
        let shape = spectral.shape
        guard all(2 &* reach &+ 1 .<= shape) else {
            throw .invalidParameter(parameter, "radius \(radius) mm does not fit in the \(shape.x)×\(shape.y)×\(shape.z) grid")
        }
        var offsets: [Int] = []
        for dz in -reach.z...reach.z {
            for dy in -reach.y...reach.y {
                for dx in -reach.x...reach.x {
                    let p = SIMD3(Double(dx), Double(dy), Double(dz)) * voxelSize
                    guard (p * p).sum() <= radius * radius * (1 + 1e-12) else { continue }
                    let x = (dx + shape.x) % shape.x, y = (dy + shape.y) % shape.y, z = (dz + shape.z) % shape.z
                    offsets.append(x + shape.x * (y + shape.y * z))
                }
            }
        }
        guard offsets.count > 1 else {
            throw .invalidParameter(parameter, "radius \(radius) mm is smaller than one voxel (\(voxelSize.min()) mm)")
        }
        for o in offsets { ball[o] = 1 / Float(offsets.count) }
        spectral.forward(ball, into: &transform)
        for o in offsets { ball[o] = 0 }
        return offsets.count
    }

    /// The ball of `radius` mm (allocating its own buffers).
    init(radius: Double, voxelSize: SIMD3<Double>, spectral: Spectral, parameter: String) throws(QSMError) {
        var ball = [Float](repeating: 0, count: spectral.count)
        var scratch = [Complex<Float>](repeating: .zero, count: spectral.halfCount)
        var spectrum = [Float](repeating: 0, count: spectral.halfCount)
        voxelCount = try Self.build(radius: radius, voxelSize: voxelSize, spectral: spectral, ball: &ball,
                                    scratch: &scratch, into: &spectrum, parameter: parameter)
        self.spectrum = spectrum
        reach = Self.reach(radius: radius, voxelSize: voxelSize)
    }

    /// Ball reach in voxels per axis for `radius` mm.
    static func reach(radius: Double, voxelSize: SIMD3<Double>) -> SIMD3<Int> {
        SIMD3((0..<3).map { Int((radius / voxelSize[$0] + 1e-9).rounded(.down)) })
    }

    /// 1 − Ŝ_r: the symbol of δ − s_r, the SHARP high-pass.
    var highPass: [Float] {
        spectrum.withUnsafeBufferPointer { b in
            let p = ReadPointer(b.baseAddress!)
            return VoxelLoop.generate(count: b.count) { 1 - p[$0] }
        }
    }

    /// The cut on (s_r ⊛ M) that separates "whole ball inside" from "one voxel outside".
    var erosionCut: Float { 1 - 0.5 / Float(voxelCount) }

    /// The mask eroded by the ball: voxels whose whole ball lies in the mask (1 inverse FFT).
    ///
    /// (s_r ⊛ M)(x) is 1 inside and at most 1 − 1/|B_r| as soon as one ball voxel is outside, so the
    /// cut 1 − 0.5/|B_r| separates the two with a margin far above Float FFT rounding (~1e-6).
    func erode(maskSpectrum: [Complex<Float>], spectral: Spectral) -> [Bool] {
        let smoothed = spectral.inverse(maskSpectrum, times: spectrum)
        let cut = 1 - 0.5 / Float(voxelCount)
        return smoothed.map { $0 > cut }
    }
}

/// Eigenvalues of the 7-point discrete Laplacian with periodic boundaries, on the half spectrum.
///
/// λ(k) = Σ_axes 2(cos(2π m_axis/N_axis) − 1)/Δ_axis² ≤ 0, λ(0) = 0 (QSM.md §3.1, §7).
enum LaplacianEigenvalues {
    /// λ on the half spectrum of `shape` with voxel size `voxelSize` (mm), x fastest.
    static func halfSpectrum(shape: SIMD3<Int>, voxelSize: SIMD3<Double>) -> [Float] {
        func axis(_ n: Int, _ count: Int, _ d: Double) -> [Double] {
            (0..<count).map { m -> Double in
                let c = Double.cos(2 * Double.pi * Double(m) / Double(n))
                return 2 * (c - 1) / (d * d)
            }
        }
        let hx = shape.x / 2 + 1
        let lx = axis(shape.x, hx, voxelSize.x), ly = axis(shape.y, shape.y, voxelSize.y)
        let lz = axis(shape.z, shape.z, voxelSize.z)
        var out = [Float](repeating: 0, count: hx * shape.y * shape.z)
        var i = 0
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<hx { out[i] = Float(lx[x] + ly[y] + lz[z]); i += 1 } } }
        return out
    }
}
