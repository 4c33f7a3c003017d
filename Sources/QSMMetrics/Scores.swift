/// The scores of one reconstruction under one convention; encodes to the `qsmbench score` JSON.
///
/// Undefined values (e.g. NRMSE with a constant truth) are nil and encode as `null`.
public struct Scores: Codable, Sendable, Equatable {
    /// Errors of one region.
    public struct RegionScores: Codable, Sendable, Equatable {
        /// Voxels in the region.
        public var voxels: Int
        /// Demeaned NRMSE over the region (percent).
        public var nrmseDemeaned: Double?
        /// Detrended NRMSE over the region (percent, the convention's variant).
        public var nrmseDetrended: Double?

        enum CodingKeys: String, CodingKey {
            case voxels, nrmseDemeaned = "nrmse_demeaned", nrmseDetrended = "nrmse_detrended"
        }

        /// Encodes every key; undefined errors are written as `null`.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(voxels, forKey: .voxels)
            try c.encode(nrmseDemeaned, forKey: .nrmseDemeaned)
            try c.encode(nrmseDetrended, forKey: .nrmseDetrended)
        }
    }

    /// The convention the values follow.
    public var convention: MetricConvention
    /// Version of the tool that computed them.
    public var version: String
    /// 2016-challenge RMSE (percent).
    public var rmse: Double?
    /// The convention's headline NRMSE (percent; see `definitions["nrmse"]`).
    public var nrmse: Double?
    /// Demeaned NRMSE (percent).
    public var nrmseDemeaned: Double?
    /// Detrended NRMSE (percent).
    public var nrmseDetrended: Double?
    /// All three published detrending variants (percent), keyed by `NRMSE.Detrending` raw value.
    public var nrmseDetrendedVariants: [String: Double?]
    /// High-frequency error norm (percent).
    public var hfen: Double?
    /// Structural similarity.
    public var ssim: Double?
    /// XSIM.
    public var xsim: Double?
    /// Pearson correlation.
    public var cc: Double?
    /// Normalised mutual information (1…2).
    public var nmi: Double?
    /// Fraction of mask voxels with a finite, non-zero reconstruction.
    public var coverage: Double
    /// Voxels in the evaluation mask.
    public var maskVoxels: Int
    /// Region errors: `whole_brain`, and with a segmentation `tissue`, `blood`, `dgm` (0 voxels and
    /// null errors when a region is empty).
    public var regions: [String: RegionScores]
    /// Per-label χ statistics (empty without a segmentation).
    public var labels: [LabelStatistics]
    /// OLS slope of DGM mean χ (reconstruction vs truth); nil without at least two DGM labels.
    public var dgmSlope: Double?
    /// |1 − dgmSlope|.
    public var dgmLinearity: Double?
    /// Calcification moment deviation and streak; nil without a calcification label.
    public var calcification: CalcificationMetrics?
    /// Definition of every key under this convention.
    public var definitions: [String: String]

    enum CodingKeys: String, CodingKey {
        case convention, version, rmse, nrmse, hfen, ssim, xsim, cc, nmi, coverage, regions, labels
        case calcification, definitions
        case nrmseDemeaned = "nrmse_demeaned", nrmseDetrended = "nrmse_detrended"
        case nrmseDetrendedVariants = "nrmse_detrended_variants", maskVoxels = "mask_voxels"
        case dgmSlope = "dgm_slope", dgmLinearity = "dgm_linearity"
    }

    /// Encodes every key; nil values are written as `null` instead of being left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(convention, forKey: .convention)
        try c.encode(version, forKey: .version)
        try c.encode(rmse, forKey: .rmse)
        try c.encode(nrmse, forKey: .nrmse)
        try c.encode(nrmseDemeaned, forKey: .nrmseDemeaned)
        try c.encode(nrmseDetrended, forKey: .nrmseDetrended)
        try c.encode(nrmseDetrendedVariants, forKey: .nrmseDetrendedVariants)
        try c.encode(hfen, forKey: .hfen)
        try c.encode(ssim, forKey: .ssim)
        try c.encode(xsim, forKey: .xsim)
        try c.encode(cc, forKey: .cc)
        try c.encode(nmi, forKey: .nmi)
        try c.encode(coverage, forKey: .coverage)
        try c.encode(maskVoxels, forKey: .maskVoxels)
        try c.encode(regions, forKey: .regions)
        try c.encode(labels, forKey: .labels)
        try c.encode(dgmSlope, forKey: .dgmSlope)
        try c.encode(dgmLinearity, forKey: .dgmLinearity)
        try c.encode(calcification, forKey: .calcification)
        try c.encode(definitions, forKey: .definitions)
    }

    /// The headline values as (JSON key, value) pairs in table order.
    public var headline: [(key: String, value: Double?)] {
        [("rmse", rmse), ("nrmse", nrmse), ("nrmse_demeaned", nrmseDemeaned),
         ("nrmse_detrended", nrmseDetrended), ("hfen", hfen), ("ssim", ssim), ("xsim", xsim),
         ("cc", cc), ("nmi", nmi), ("coverage", coverage)]
    }
}
