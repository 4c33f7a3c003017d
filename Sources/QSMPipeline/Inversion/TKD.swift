import QSMCore

/// Truncated k-space division: χ = M·F⁻¹[F[M·f]·D⁻¹], with |D| ≤ δ replaced by sign(D)/δ.
///
/// Shmueli K, de Zwart JA, van Gelderen P, Li TQ, Dodd SJ, Duyn JH. Magnetic susceptibility mapping
/// of brain tissue in vivo using MRI phase data. MRM 2009;62:1510–1522. doi:10.1002/mrm.22135.
/// sign(0) = +1 as in QSM.jl `tkd` and QSM.rs (QSM.md §2.2), so with D(0) = 0 the field's mean is
/// scaled by 1/δ; referencing removes it. No padding beyond the input grid (2 FFTs); no
/// correction for the truncation's contrast loss (QSM.md §7.1, as QSM.jl, QSM.rs and SEPIA).
public struct TKD: DipoleInversion {
    /// TKD's one parameter.
    public struct Parameters: MethodParameters {
        /// Threshold δ on |D(k)|, in (0, 2/3). Default from QSM.jl `tkd` and QSM.rs `TkdParams` (QSM.md §7.1).
        public var threshold = 0.15
        /// The literature default.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("threshold", \.threshold, in: Interval(0, 2.0 / 3, lowerClosed: false, upperClosed: false, text: "(0, 2/3)"),
                   "Threshold δ on |D(k)|; |D| ≤ δ is replaced by sign(D)/δ. Default 0.15 (QSM.jl tkd, QSM.rs TkdParams).")]
        }
    }

    public static let name = "tkd"
    public static let kind = StageKind.inversion
    public static let summary = "Truncated k-space division (Shmueli et al. 2009)"
    public var parameters: Parameters
    /// TKD with the given (default: literature) parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm), zero outside `mask`.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float> {
        try validateParameters()
        try context.validate()
        try InputCheck.field(localField, mask: mask, name: "local field")
        let grid = localField.grid
        let delta = parameters.threshold
        var inverse = DipoleKernel.halfSpectrum(shape: grid.shape, voxelSize: grid.voxelSize,
                                                b0Direction: context.b0Direction,
                                                dc: context.conventions.dipoleDC, as: Double.self)
            .map { d -> Float in Float(abs(d) > delta ? 1 / d : (d < 0 ? -1 : 1) / delta) }
        let spectral = try Spectral(shape: grid.shape)
        var spectrum = spectral.forward(localField.masked(by: mask).voxels)
        VoxelLoop.multiply(&spectrum, by: inverse)
        inverse = []
        var chi = spectral.inverse(consuming: &spectrum)
        for i in 0..<chi.count where !mask.voxels[i] { chi[i] = 0 }
        return try Volume(grid: grid, voxels: chi)
    }
}
