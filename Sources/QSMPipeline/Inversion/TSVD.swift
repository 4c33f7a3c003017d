import QSMCore

/// Truncated singular value decomposition in k-space: χ = M·F⁻¹[F[M·f]·D_inv], D_inv = 1/D where
/// |D| > δ and 0 elsewhere (no correction).
///
/// Wharton S, Schäfer A, Bowtell R. Susceptibility mapping in the human brain using threshold-based
/// k-space division. MRM 2010;63:1292–1304. doi:10.1002/mrm.22334. Default δ from QSM.jl `tsvd` and
/// QSM.rs (QSM.md §7.2). SEPIA's "TKD" is this method.
public struct TSVD: DipoleInversion {
    /// TSVD's one parameter.
    public struct Parameters: MethodParameters {
        /// Threshold δ on |D(k)|, in (0, 2/3). Default from QSM.jl `tsvd` and QSM.rs (QSM.md §7.2).
        public var threshold = 0.15
        /// The literature default.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("threshold", \.threshold, in: Interval(0, 2.0 / 3, lowerClosed: false, upperClosed: false, text: "(0, 2/3)"),
                   "Threshold δ on |D(k)|; |D| ≤ δ is set to 0. Default: QSM.jl tsvd, QSM.rs.")]
        }
    }

    public static let name = "tsvd"
    public static let kind = StageKind.inversion
    public static let summary = "Truncated SVD in k-space (Wharton et al. 2010)"
    public var parameters: Parameters
    /// TSVD with the given (default: literature) parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// The direction-averaged gain the truncation keeps: the share of directions with |D| > δ.
    public static func meanGain(threshold delta: Double) -> Double {
        KSpaceDivision.meanGain { d in abs(d) > delta ? 1 : 0 }
    }

    /// χ (ppm) from a local field (ppm), zero outside `mask`.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float> {
        try validateParameters()
        let delta = parameters.threshold
        return try KSpaceDivision.apply(localField: localField, mask: mask, context: context) { d in
            abs(d) > delta ? 1 / d : 0
        }
    }
}
