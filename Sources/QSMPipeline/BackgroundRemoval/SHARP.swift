import QSMCore

/// Sophisticated harmonic artifact reduction for phase data: SMV high-pass, then TSVD deconvolution.
///
/// Schweser F, Deistung A, Lehr BW, Reichenbach JR. Quantitative imaging of intrinsic magnetic
/// tissue properties using MRI signal phase: an approach to in vivo brain iron metabolism?
/// NeuroImage 2011;54:2789–2807. doi:10.1016/j.neuroimage.2010.10.070. Equations of QSM.md §6.1:
/// M_r = erode(M, r); g = M_r·F⁻¹[(1 − Ŝ_r)F[M·Δb]]; Δb_local = M_r·F⁻¹[F[g]·T(1 − Ŝ_r)].
/// M_r comes from a distance transform (`BallErosion`: the same set as thresholding s_r ⊛ M), so
/// 5 FFTs: F[M·Δb], the ball's transform with the high-pass in one fused sweep (`FFT.filter`), the
/// deconvolution with its masked, cropped output in another (the V-SHARP code with one radius).
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
        // V-SHARP with one radius is SHARP: every voxel of M_r takes the high-pass of that radius.
        return try VSHARP.localField(totalField: totalField, mask: mask, context: context, radii: [parameters.radius],
                                     parameters: ["bgremove.radius"], threshold: parameters.threshold, stage: "bgremove.radius")
    }
}
