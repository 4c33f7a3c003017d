import QSMCore

/// Laplacian phase unwrapping: the Laplacian of the true phase from wrapped differences, then an
/// FFT Poisson solve with periodic boundaries.
///
/// Schofield MA, Zhu Y. Fast phase unwrapping algorithm for interferometric applications. Opt Lett
/// 2003;28:1194–1196. doi:10.1364/OL.28.001194. Discrete form of QSM.jl `unwrap_laplacian` and
/// QSM.rs `unwrap/laplacian.rs` (QSM.md §3.1): ∇²φ ≈ Σ_axes (wrap(φ[i+e]−φ[i]) − wrap(φ[i]−φ[i−e]))/Δ²
/// on the whole grid, φ̂_u = F[∇²φ]/λ(k), φ̂_u(0) = 0. 2 FFTs per echo.
///
/// The Poisson solve loses each echo's constant. The constant is then chosen so φ_u is congruent
/// with the wrapped phase on average over the mask (c = arg Σ_M exp(i(φ_w − φ_u))), which leaves
/// each echo correct up to 2πk_echo where the wrapped phase is smooth. The result is not congruent
/// voxel by voxel: it smooths where the phase is not (QSM.md §3.1 caveats).
public struct LaplacianUnwrapping: PhaseUnwrapping {
    public typealias Parameters = NoParameters
    public static let name = "laplacian"
    public static let kind = StageKind.unwrapping
    public static let summary = "FFT Laplacian unwrapping, periodic boundaries (Schofield & Zhu 2003)"
    public var parameters: Parameters
    /// Laplacian unwrapping (no parameters).
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Unwrapped phase (rad), one frame per echo, zero outside `mask`.
    public func apply(wrappedPhase: Volume<Float>, magnitude: Volume<Float>?, mask: Mask,
                      context: StageContext) throws(QSMError) -> Volume<Float> {
        try wrappedPhase.grid.requireMatches(mask.grid, "phase", "mask")
        let insideCount = mask.insideCount
        guard insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
        let grid = wrappedPhase.grid, n = grid.count, echoes = wrappedPhase.frames
        // The Poisson solve couples every voxel, so the phase must be finite everywhere, not only in the mask.
        for e in 0..<echoes {
            let finite = wrappedPhase.withVoxels { VoxelLoop.allFinite(UnsafeBufferPointer(rebasing: $0[e * n..<(e + 1) * n])) }
            if !finite { try wrappedPhase.frame(e).requireFinite(in: Mask(grid: grid, repeating: true), "phase echo \(e + 1)") }
        }
        let fft = try FFT<Float>(shape: grid.shape)
        // 1/λ(k) per block of k-space columns, λ(0) := 0 (the Poisson solve's free constant).
        let eigenvalues = LaplacianEigenvalues.Columns(shape: grid.shape, voxelSize: grid.voxelSize)
        let inside = mask.voxels, shape = grid.shape, voxelSize = grid.voxelSize
        let planeSize = shape.x * shape.y, scale = 1 / Float(n)
        // Per echo one fused sweep: the wrapped Laplacian is computed plane by plane as the forward
        // transform reads it, divided by λ in k-space, and the solution is written straight into
        // the output, masked; the congruence constant is then added in place.
        var output = [Float](unsafeUninitializedCapacity: n * echoes) { _, initialized in initialized = n * echoes }
        var spectrum = [Complex<Float>](unsafeUninitializedCapacity: fft.halfCount) { _, initialized in initialized = fft.halfCount }
        // Output planes without mask voxels are not transformed back (zero).
        let maskPlanes = inside.withUnsafeBufferPointer { PlaneSupport(occupiedBy: $0, planeSize: planeSize) }
        for e in 0..<echoes {
            wrappedPhase.withVoxels { phase in output.withUnsafeMutableBufferPointer { ob in
                inside.withUnsafeBufferPointer { mb in spectrum.withUnsafeMutableBufferPointer { sb in
                    let pp = ReadPointer(phase.baseAddress! + e * n), op = SendablePointer(ob.baseAddress! + e * n)
                    let mp = ReadPointer(mb.baseAddress!)
                    fft.filter(spectrum: sb, normalized: false, outputPlanes: maskPlanes, load: { z, plane in
                        Self.wrappedLaplacian(pp, plane: z, shape: shape, voxelSize: voxelSize, into: plane)
                    }, product: { columns in
                        eigenvalues.divide(columns, scale: scale)
                    }, store: { z, plane in
                        let offset = z * planeSize
                        for i in 0..<planeSize { op[offset + i] = mp[offset + i] ? plane[i] : 0 }
                    })
                    maskPlanes.zeroPlanesOutside(op.base, planeSize: planeSize, depth: shape.z)
                } }
            } }
            let constant = wrappedPhase.withVoxels { phase in output.withUnsafeBufferPointer { ob in
                Self.congruenceConstant(wrapped: ReadPointer(phase.baseAddress! + e * n),
                                        unwrapped: ReadPointer(ob.baseAddress! + e * n),
                                        inside: inside, insideCount: insideCount)
            } }
            output.withUnsafeMutableBufferPointer { ob in inside.withUnsafeBufferPointer { mb in
                let op = SendablePointer(ob.baseAddress! + e * n), mp = ReadPointer(mb.baseAddress!)
                parallelFor(0..<n) { r in for i in r where mp[i] { op[i] += constant } }
            } }
        }
        return try Volume(grid: grid, frames: echoes, voxels: output)
    }

    /// The constant c making φ_u + c congruent with φ_w on average over the mask: a circular mean of
    /// φ_w − φ_u on every 61st mask voxel gives c0, then c = c0 + mean_M wrap(φ_w − φ_u − c0), which
    /// equals the circular mean when the spread is well below π and needs no trigonometry per voxel.
    static func congruenceConstant(wrapped: ReadPointer<Float>, unwrapped up: ReadPointer<Float>, inside: [Bool],
                                   insideCount: Int) -> Float {
        var re = 0.0, im = 0.0, seen = 0
        for i in 0..<inside.count where inside[i] {
            if seen % 61 == 0 {
                let d = Double(wrapped[i] - up[i])
                re += Double.cos(d); im += Double.sin(d)
            }
            seen += 1
            if seen > 61 * 4096 { break }
        }
        let c0 = Float(Double.atan2(y: im, x: re))
        let sum = VoxelLoop.chunkedSum(count: inside.count) { r in
            var s = 0.0
            for i in r where inside[i] { s += Double(wrapPhase(wrapped[i] - up[i] - c0)) }
            return s
        }
        return c0 + Float(sum / Double(insideCount))
    }

    /// Plane z of Σ_axes (wrap(φ[i+e]−φ[i]) − wrap(φ[i]−φ[i−e]))/Δ², periodic neighbours.
    static func wrappedLaplacian(_ p: ReadPointer<Float>, plane z: Int, shape n: SIMD3<Int>, voxelSize: SIMD3<Double>,
                                 into out: UnsafeMutableBufferPointer<Float>) {
        let wx = Float(1 / (voxelSize.x * voxelSize.x)), wy = Float(1 / (voxelSize.y * voxelSize.y))
        let wz = Float(1 / (voxelSize.z * voxelSize.z))
        let zm = z == 0 ? n.z - 1 : z - 1, zp = z == n.z - 1 ? 0 : z + 1
        for y in 0..<n.y {
            let ym = y == 0 ? n.y - 1 : y - 1, yp = y == n.y - 1 ? 0 : y + 1
            let row = n.x * (y + n.y * z), planeRow = n.x * y
            let rowYm = n.x * (ym + n.y * z), rowYp = n.x * (yp + n.y * z)
            let rowZm = n.x * (y + n.y * zm), rowZp = n.x * (y + n.y * zp)
            // Interior x without wrap-around branches, each difference wrapped by a select (no
            // data-dependent branch: wraps are frequent; the same values as `wrapDifference`); a
            // row holding a difference of 3π or more (not two wrapped phases) is redone with it.
            @inline(__always) func at(_ x: Int, _ xm: Int, _ xp: Int, _ wrap: (Float) -> Float) -> Float {
                let c = p[row + x]
                let lx = wrap(p[row + xp] - c) - wrap(c - p[row + xm])
                let ly = wrap(p[rowYp + x] - c) - wrap(c - p[rowYm + x])
                let lz = wrap(p[rowZp + x] - c) - wrap(c - p[rowZm + x])
                return wx * lx + wy * ly + wz * lz
            }
            var large = false
            if n.x > 2 {
                let pi = SIMD8<Float>(repeating: .pi), twoPi = SIMD8<Float>(repeating: 2 * .pi)
                let limit = SIMD8<Float>(repeating: 3 * .pi), zero = SIMD8<Float>(repeating: 0)
                let raw = UnsafeRawPointer(p.base), target = UnsafeMutableRawPointer(out.baseAddress!)
                @inline(__always) func load(_ i: Int) -> SIMD8<Float> { raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) }
                @inline(__always) func wrapped(_ d: SIMD8<Float>) -> SIMD8<Float> {
                    large = large || any((d .>= limit) .| (d .<= -limit))
                    return d - zero.replacing(with: twoPi, where: d .> pi).replacing(with: -twoPi, where: d .< -pi)
                }
                let vx = SIMD8(repeating: wx), vy = SIMD8(repeating: wy), vz = SIMD8(repeating: wz)
                var x = 1
                while x + 8 <= n.x - 1 {
                    let c = load(row + x)
                    let lx = wrapped(load(row + x + 1) - c) - wrapped(c - load(row + x - 1))
                    let ly = wrapped(load(rowYp + x) - c) - wrapped(c - load(rowYm + x))
                    let lz = wrapped(load(rowZp + x) - c) - wrapped(c - load(rowZm + x))
                    target.storeBytes(of: vx * lx + vy * ly + vz * lz, toByteOffset: 4 * (planeRow + x), as: SIMD8<Float>.self)
                    x += 8
                }
                while x < n.x - 1 { out[planeRow + x] = at(x, x - 1, x + 1, wrapDifference); x += 1 }
            }
            if large, n.x > 2 { for x in 1..<n.x - 1 { out[planeRow + x] = at(x, x - 1, x + 1, wrapDifference) } }
            out[planeRow] = at(0, n.x - 1, n.x > 1 ? 1 : 0, wrapDifference)
            if n.x > 1 { out[planeRow + n.x - 1] = at(n.x - 1, n.x - 2, 0, wrapDifference) }
        }
    }
}
