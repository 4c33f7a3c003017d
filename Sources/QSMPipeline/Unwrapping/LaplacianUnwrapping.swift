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
        let spectral = try Spectral(shape: grid.shape)
        let eigenvalues = LaplacianEigenvalues.halfSpectrum(shape: grid.shape, voxelSize: grid.voxelSize)
        let inverseEigenvalues = VoxelLoop.generate(count: eigenvalues.count) { eigenvalues[$0] == 0 ? 0 : 1 / eigenvalues[$0] }
        let inside = mask.voxels
        var output = VoxelLoop.zeros(n * echoes)
        var laplacian = VoxelLoop.zeros(n), unwrapped = laplacian
        var scratch = VoxelLoop.complexZeros(spectral.halfCount)
        for e in 0..<echoes {
            wrappedPhase.withVoxels { phase in
                laplacian.withUnsafeMutableBufferPointer { out in
                    Self.wrappedLaplacian(ReadPointer(phase.baseAddress! + e * n), shape: grid.shape,
                                          voxelSize: grid.voxelSize, into: SendablePointer(out.baseAddress!))
                }
            }
            spectral.filter(laplacian, kernel: inverseEigenvalues, scratch: &scratch, into: &unwrapped)   // λ(0) := 0
            let constant = wrappedPhase.withVoxels { phase in
                Self.congruenceConstant(wrapped: ReadPointer(phase.baseAddress! + e * n), unwrapped: unwrapped,
                                        inside: inside, insideCount: insideCount)
            }
            output.withUnsafeMutableBufferPointer { ob in
                unwrapped.withUnsafeBufferPointer { ub in
                    let op = SendablePointer(ob.baseAddress! + e * n), up = ReadPointer(ub.baseAddress!)
                    parallelFor(0..<n) { r in for i in r { op[i] = inside[i] ? up[i] + constant : 0 } }
                }
            }
        }
        return try Volume(grid: grid, frames: echoes, voxels: output)
    }

    /// The constant c making φ_u + c congruent with φ_w on average over the mask: a circular mean of
    /// φ_w − φ_u on every 61st mask voxel gives c0, then c = c0 + mean_M wrap(φ_w − φ_u − c0), which
    /// equals the circular mean when the spread is well below π and needs no trigonometry per voxel.
    static func congruenceConstant(wrapped: ReadPointer<Float>, unwrapped: [Float], inside: [Bool],
                                   insideCount: Int) -> Float {
        var re = 0.0, im = 0.0, seen = 0
        for i in 0..<inside.count where inside[i] {
            if seen % 61 == 0 {
                let d = Double(wrapped[i] - unwrapped[i])
                re += Double.cos(d); im += Double.sin(d)
            }
            seen += 1
            if seen > 61 * 4096 { break }
        }
        let c0 = Float(Double.atan2(y: im, x: re))
        let sum = unwrapped.withUnsafeBufferPointer { ub in
            let up = ReadPointer(ub.baseAddress!)
            return VoxelLoop.chunkedSum(count: inside.count) { r in
                var s = 0.0
                for i in r where inside[i] { s += Double(wrapPhase(wrapped[i] - up[i] - c0)) }
                return s
            }
        }
        return c0 + Float(sum / Double(insideCount))
    }

    /// out ← Σ_axes (wrap(φ[i+e]−φ[i]) − wrap(φ[i]−φ[i−e]))/Δ², periodic neighbours, parallel over z.
    static func wrappedLaplacian(_ p: ReadPointer<Float>, shape n: SIMD3<Int>, voxelSize: SIMD3<Double>,
                                 into out: SendablePointer<Float>) {
        let wx = Float(1 / (voxelSize.x * voxelSize.x)), wy = Float(1 / (voxelSize.y * voxelSize.y))
        let wz = Float(1 / (voxelSize.z * voxelSize.z))
        parallelFor(0..<n.z) { zs in
            for z in zs {
                let zm = z == 0 ? n.z - 1 : z - 1, zp = z == n.z - 1 ? 0 : z + 1
                for y in 0..<n.y {
                    let ym = y == 0 ? n.y - 1 : y - 1, yp = y == n.y - 1 ? 0 : y + 1
                    let row = n.x * (y + n.y * z)
                    let rowYm = n.x * (ym + n.y * z), rowYp = n.x * (yp + n.y * z)
                    let rowZm = n.x * (y + n.y * zm), rowZp = n.x * (y + n.y * zp)
                    // Interior x without wrap-around branches (vectorisable), then the two ends.
                    @inline(__always) func at(_ x: Int, _ xm: Int, _ xp: Int) -> Float {
                        let c = p[row + x]
                        let lx = wrapDifference(p[row + xp] - c) - wrapDifference(c - p[row + xm])
                        let ly = wrapDifference(p[rowYp + x] - c) - wrapDifference(c - p[rowYm + x])
                        let lz = wrapDifference(p[rowZp + x] - c) - wrapDifference(c - p[rowZm + x])
                        return wx * lx + wy * ly + wz * lz
                    }
                    if n.x > 2 { for x in 1..<n.x - 1 { out[row + x] = at(x, x - 1, x + 1) } }
                    out[row] = at(0, n.x - 1, n.x > 1 ? 1 : 0)
                    if n.x > 1 { out[row + n.x - 1] = at(n.x - 1, n.x - 2, 0) }
                }
            }
        }
    }
}
