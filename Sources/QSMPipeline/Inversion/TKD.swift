import QSMCore

/// Truncated k-space division: χ = M·F⁻¹[F[M·f]·D⁻¹], with |D| ≤ δ replaced by sign(D)/δ.
///
/// Shmueli K, de Zwart JA, van Gelderen P, Li TQ, Dodd SJ, Duyn JH. Magnetic susceptibility mapping
/// of brain tissue in vivo using MRI phase data. MRM 2009;62:1510–1522. doi:10.1002/mrm.22135.
/// sign(0) = +1 as in QSM.jl `tkd` and QSM.rs (QSM.md §2.2), so with D(0) = 0 the field's mean is
/// scaled by 1/δ; referencing removes it. No padding beyond the input grid (2 FFTs). By default no
/// correction for the truncation's contrast loss (QSM.jl, QSM.rs, SEPIA); with `correction` the map
/// is divided by the direction-averaged gain h̄(δ) = ∫₀¹ min(1, |1−3u²|/(3δ)) du (0.8683 at δ = 0.15),
/// the global correction of Schweser F, Deistung A, Sommer K, Reichenbach JR. MRM 2013;69:1582–1594.
/// doi:10.1002/mrm.24405 (QSM.md §7.1).
public struct TKD: DipoleInversion {
    /// TKD's parameters.
    public struct Parameters: MethodParameters {
        /// Threshold δ on |D(k)|, in (0, 2/3). Default from QSM.jl `tkd` and QSM.rs `TkdParams` (QSM.md §7.1).
        public var threshold = 0.15
        /// Divide by the mean truncation gain h̄(δ) (Schweser et al. 2013). Default off, as QSM.jl and QSM.rs.
        public var correction = false
        /// The literature default.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("threshold", \.threshold, in: Interval(0, 2.0 / 3, lowerClosed: false, upperClosed: false, text: "(0, 2/3)"),
                   "Threshold δ on |D(k)|; |D| ≤ δ is replaced by sign(D)/δ. Default: QSM.jl tkd, QSM.rs TkdParams."),
             .flag("correction", \.correction,
                   "Divide by the mean truncation gain h̄(δ) (Schweser et al. 2013). Default off (QSM.jl, QSM.rs).")]
        }
    }

    public static let name = "tkd"
    public static let kind = StageKind.inversion
    public static let summary = "Truncated k-space division (Shmueli et al. 2009)"
    public var parameters: Parameters
    /// TKD with the given (default: literature) parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// The direction-averaged gain h̄(δ) the truncation keeps (QSM.md §7.1).
    public static func meanGain(threshold delta: Double) -> Double {
        KSpaceDivision.meanGain { d in min(1, abs(d) / delta) }
    }

    /// χ (ppm) from a local field (ppm), zero outside `mask`.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float> {
        try validateParameters()
        let delta = parameters.threshold
        let scale = parameters.correction ? 1 / Self.meanGain(threshold: delta) : 1
        return try KSpaceDivision.apply(localField: localField, mask: mask, context: context, scale: scale) { d in
            abs(d) > delta ? 1 / d : (d < 0 ? -1 : 1) / delta
        }
    }
}
