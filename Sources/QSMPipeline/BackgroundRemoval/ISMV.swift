import QSMCore

/// Iterative spherical mean value: extends the harmonic background from the mask's rim inward.
///
/// Wen Y, Zhou D, Liu T, Spincemaille P, Wang Y. An iterative spherical mean value method for
/// background field removal in MRI. MRM 2014;72:1065–1071. doi:10.1002/mrm.24998. As QSM.jl
/// `ismv` (QSM.md §6.4): m = erode(M, r); bc = (M − m)·Δb; f ← M·Δb; repeat f ← m·(s_r ⊛ f) + bc
/// until ‖f_new − f_old‖ ≤ tolerance·‖m·Δb‖ or maxIterations; Δb_local = m·(Δb − f).
/// FFTs: 3 + 2 per iteration.
public struct ISMV: BackgroundRemoval {
    /// iSMV's parameters.
    public struct Parameters: MethodParameters {
        /// SMV radius in mm. Default: QSM.jl `ismv` uses 2 × the largest voxel size.
        public var radius = 2.0
        /// Relative update size at which iterations stop, in (0, 1). Default: QSM.jl `ismv`.
        public var tolerance = 1e-3
        /// Iteration cap, ≥ 1. Default: QSM.jl `ismv`.
        public var maxIterations = 500
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("radius", \.radius, in: .positive, "SMV radius, mm. Default: QSM.jl ismv at 1 mm voxels."),
             .real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖update‖ ≤ tolerance·‖m·Δb‖. Default: QSM.jl ismv."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "Iteration cap. Default: QSM.jl ismv.")]
        }
    }

    public static let name = "ismv"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "Iterative SMV background extension (Wen et al. 2014)"
    public var parameters: Parameters
    /// iSMV with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) inside the mask eroded by the radius.
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        let domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: parameters.radius)
        let s = domain.spectral
        let kernel = try domain.kernel(radius: parameters.radius, parameter: "bgremove.radius")
        let inner = domain.erosion(radius: parameters.radius)
        let total = domain.field
        var boundary = VoxelLoop.zeros(s.count)
        var innerNorm = 0.0
        for i in 0..<s.count {
            if domain.mask[i] && !inner[i] { boundary[i] = total[i] }
            if inner[i] { innerNorm += Double(total[i]) * Double(total[i]) }
        }
        let stop = parameters.tolerance * innerNorm.squareRoot()
        var f = total, next = total
        var scratch = VoxelLoop.complexZeros(s.halfCount)
        // s_r ⊛ f as one fused sweep: f is zero outside M (planes without M not loaded) and only
        // the eroded voxels keep the result (planes without them not transformed back).
        let smooth = SpectralFilter(fft: s.fft, kernel: kernel.spectrum)
        let innerPlanes = inner.withUnsafeBufferPointer { PlaneSupport(occupiedBy: $0, planeSize: s.shape.x * s.shape.y) }
        for _ in 0..<parameters.maxIterations {
            smooth.apply(f, into: &next, spectrum: &scratch, inputPlanes: domain.padding.maskPlanes, outputPlanes: innerPlanes)
            let change = next.withUnsafeMutableBufferPointer { nb in
                f.withUnsafeBufferPointer { fb in
                    boundary.withUnsafeBufferPointer { bb in
                        let np = SendablePointer(nb.baseAddress!), fp = ReadPointer(fb.baseAddress!)
                        let bp = ReadPointer(bb.baseAddress!)
                        return VoxelLoop.chunkedSum(count: nb.count) { r in
                            var sum = 0.0
                            for i in r {
                                let v = inner[i] ? np[i] : bp[i]
                                np[i] = v
                                let d = Double(v - fp[i]); sum += d * d
                            }
                            return sum
                        }
                    }
                }
            }
            swap(&f, &next)
            if change.squareRoot() <= stop { break }
        }
        let local = (0..<s.count).map { inner[$0] ? total[$0] - f[$0] : 0 }
        return try domain.result(field: local, valid: inner, stage: "bgremove.radius")
    }
}
