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
        guard mask.insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
        let grid = wrappedPhase.grid
        let spectral = try Spectral(shape: grid.shape)
        var eigenvalues = LaplacianEigenvalues.halfSpectrum(shape: grid.shape, voxelSize: grid.voxelSize)
        eigenvalues = eigenvalues.map { $0 == 0 ? 0 : 1 / $0 }           // λ(0) := 0 drops the DC
        var frames: [Volume<Float>] = []
        for e in 0..<wrappedPhase.frames {
            let phase = wrappedPhase.frame(e)
            try phase.requireFinite(in: mask, "phase echo \(e + 1)")
            var unwrapped = spectral.filter(Self.wrappedLaplacian(phase), kernel: eigenvalues)
            // Congruence on average over the mask (circular mean of φ_w − φ_u).
            var re = 0.0, im = 0.0
            for i in 0..<grid.count where mask.voxels[i] {
                let d = Double(phase.voxels[i] - unwrapped[i])
                re += Double.cos(d); im += Double.sin(d)
            }
            let constant = Float(Double.atan2(y: im, x: re))
            for i in 0..<grid.count { unwrapped[i] = mask.voxels[i] ? unwrapped[i] + constant : 0 }
            frames.append(try Volume(grid: grid, voxels: unwrapped))
        }
        return try Volume.stacking(frames)
    }

    /// Σ_axes (wrap(φ[i+e]−φ[i]) − wrap(φ[i]−φ[i−e]))/Δ², periodic neighbours.
    static func wrappedLaplacian(_ phase: Volume<Float>) -> [Float] {
        let n = phase.grid.shape
        let w = (1 / (phase.grid.voxelSize * phase.grid.voxelSize)).map { Float($0) }
        return phase.withVoxels { buffer in
            let p = ReadPointer(buffer.baseAddress!)
            return VoxelLoop.generate(count: phase.grid.count) { i in
                let x = i % n.x, y = (i / n.x) % n.y, z = i / (n.x * n.y)
                let c = p[i]
                let xm = i + (x == 0 ? n.x - 1 : -1), xp = i + (x == n.x - 1 ? 1 - n.x : 1)
                let ym = i + (y == 0 ? n.x * (n.y - 1) : -n.x), yp = i + (y == n.y - 1 ? -n.x * (n.y - 1) : n.x)
                let sz = n.x * n.y
                let zm = i + (z == 0 ? sz * (n.z - 1) : -sz), zp = i + (z == n.z - 1 ? -sz * (n.z - 1) : sz)
                let lx = wrapPhase(p[xp] - c) - wrapPhase(c - p[xm])
                let ly = wrapPhase(p[yp] - c) - wrapPhase(c - p[ym])
                let lz = wrapPhase(p[zp] - c) - wrapPhase(c - p[zm])
                return w.x * lx + w.y * ly + w.z * lz
            }
        }
    }
}

extension SIMD3 where Scalar == Double {
    func map(_ f: (Double) -> Float) -> SIMD3<Float> { SIMD3<Float>(f(x), f(y), f(z)) }
}
