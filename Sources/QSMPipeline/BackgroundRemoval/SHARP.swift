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
        /// SMV radius in mm, > 0 and at least one voxel. Default 6 mm from QSM.rs `SharpParams`
        /// (QSM.jl uses 18 × the smallest voxel size; QSM.md §6.1).
        public var radius = 6.0
        /// TSVD threshold on |1 − Ŝ_r| in (0, 1). Default 0.05 (QSM.jl `sharp`, QSM.rs `SharpParams`).
        public var threshold = 0.05
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("radius", \.radius, in: .positive, "SMV radius, mm. Default 6 mm (QSM.rs SharpParams)."),
             .real("threshold", \.threshold, in: .openUnit,
                   "TSVD threshold on |1 − Ŝ|. Default 0.05 (QSM.jl sharp, QSM.rs SharpParams).")]
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
        let kernel = try domain.kernel(radius: parameters.radius, parameter: "bgremove.radius")
        let eroded = kernel.erode(maskSpectrum: domain.maskSpectrum, spectral: s)
        let highPass = kernel.highPass
        var g = s.filter(domain.field, kernel: highPass)
        for i in 0..<g.count where !eroded[i] { g[i] = 0 }
        let local = s.filter(g, kernel: truncatedInverse(highPass, threshold: parameters.threshold))
        return try domain.result(field: local, valid: eroded, stage: "bgremove.radius")
    }
}
