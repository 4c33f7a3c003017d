import QSMCore

/// Sophisticated harmonic artifact reduction for phase data: SMV high-pass, then TSVD deconvolution.
///
/// Schweser F, Deistung A, Lehr BW, Reichenbach JR. Quantitative imaging of intrinsic magnetic
/// tissue properties using MRI signal phase: an approach to in vivo brain iron metabolism?
/// NeuroImage 2011;54:2789–2807. doi:10.1016/j.neuroimage.2010.10.070. Equations of QSM.md §6.1:
/// M_r = erode(M, r); g = M_r·F⁻¹[(1 − Ŝ_r)F[M·Δb]]; Δb_local = M_r·F⁻¹[F[g]·T(1 − Ŝ_r)].
/// 7 FFTs (kernel 1, erosion 2, high-pass 2, deconvolution 2).
public struct SHARP: BackgroundRemoval {
    /// SHARP's parameters.
    public struct Parameters: MethodParameters {
        /// SMV radius in mm, > 0 and at least one voxel. Default from QSM.rs `SharpParams`
        /// (QSM.jl uses 18 × the smallest voxel size; QSM.md §6.1).
        public var radius = 6.0
        /// TSVD threshold on |1 − Ŝ_r| in (0, 1). Default: QSM.jl `sharp`, QSM.rs `SharpParams`.
        public var threshold = 0.05
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("radius", \.radius, in: .positive, "SMV radius, mm. Default: QSM.rs SharpParams."),
             .real("threshold", \.threshold, in: .openUnit,
                   "TSVD threshold on |1 − Ŝ|. Default: QSM.jl sharp, QSM.rs SharpParams.")]
        }
    }

    public static let name = "sharp"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "SMV high-pass + TSVD deconvolution (Schweser et al. 2011)"
    public var parameters: Parameters
    /// SHARP with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) inside the mask eroded by the radius.
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        let domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: parameters.radius)
        let s = domain.spectral
        var scratch = VoxelLoop.complexZeros(s.halfCount)
        var work = VoxelLoop.zeros(s.count), g = work
        var kernel = VoxelLoop.zeros(s.halfCount)
        let ballCount = try SMVKernel.build(radius: parameters.radius, voxelSize: domain.grid.voxelSize, spectral: s,
                                            ball: &work, scratch: &scratch, into: &kernel, parameter: "bgremove.radius")
        s.inverse(domain.maskSpectrum, times: kernel, scratch: &scratch, into: &work)
        let cut = 1 - 0.5 / Float(ballCount)
        let smoothedMask = work
        let eroded = VoxelLoop.generateFlags(count: s.count) { smoothedMask[$0] > cut }
        // g = M_r·F⁻¹[(1 − Ŝ)F[M·Δb]], then the TSVD deconvolution of g.
        s.forward(domain.field, into: &scratch)
        VoxelLoop.multiply(&scratch, byOneMinus: kernel, scale: s.normalization)
        s.rawInverse(&scratch, into: &g)
        VoxelLoop.update(&g) { i, v in eroded[i] ? v : 0 }
        let inverse = VoxelLoop.generate(count: kernel.count) { [kernel] i in
            let c = 1 - kernel[i]
            return abs(c) >= Float(parameters.threshold) ? 1 / c : 0
        }
        s.filter(g, kernel: inverse, scratch: &scratch, into: &work)
        let local = work
        return try domain.result(field: local, valid: eroded, stage: "bgremove.radius")
    }
}
