import QSMCore

/// Brain mask from the first-echo magnitude: an automatic threshold, hole filling, erosion.
///
/// Thresholds: Otsu's between-class-variance maximum on a 256-bin histogram (Otsu N. A threshold
/// selection method from gray-level histograms. IEEE Trans Syst Man Cybern 1979;9:62–66.
/// doi:10.1109/TSMC.1979.4310076), or BET's robust threshold t = p2 + fraction·(p98 − p2) from
/// the 2nd and 98th percentiles (Smith SM. Fast robust automated brain extraction. Hum Brain Mapp
/// 2002;17:143–155. doi:10.1002/hbm.10062). Then enclosed holes are filled and the mask is eroded
/// (6-connected), the order of QSM.rs `MaskingConfig` without its dilation (QSM.md §5).
/// A mask from a file needs no method: give it to the pipeline (`PipelineInputs.mask`).
public struct ThresholdMask: MaskingMethod {
    /// How the threshold is chosen.
    public enum ThresholdRule: String, Sendable, Codable, CaseIterable {
        /// Otsu 1979.
        case otsu
        /// p2 + fraction·(p98 − p2), Smith 2002.
        case percentile
    }

    /// The mask's parameters.
    public struct Parameters: MethodParameters {
        /// Threshold rule. Default otsu (QSM.rs `MaskingConfig` thresholds with Otsu).
        public var rule = ThresholdRule.otsu
        /// Fraction of the 2–98 % robust range for the percentile rule, in (0, 1). Default 0.1 (BET, Smith 2002).
        public var fraction = 0.1
        /// Fill enclosed holes. Default true (QSM.rs `FillHoles`).
        public var fillHoles = true
        /// 6-connected erosions after filling, ≥ 0. Default 1 (QSM.rs `Erode{1}`).
        public var erosions = 1
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.choice("rule", \.rule, "Threshold rule: otsu (default; QSM.rs MaskingConfig) or percentile (BET robust threshold)."),
             .real("fraction", \.fraction, in: .openUnit, "Fraction of the 2–98 % range for the percentile rule. Default 0.1 (Smith 2002)."),
             .flag("fillHoles", \.fillHoles, "Fill enclosed holes. Default true (QSM.rs FillHoles)."),
             .integer("erosions", \.erosions, in: 0...100, "6-connected erosions after filling. Default 1 (QSM.rs Erode{1}).")]
        }
    }

    public static let name = "threshold"
    public static let kind = StageKind.masking
    public static let summary = "Magnitude threshold (Otsu or BET percentile), hole filling, erosion"
    public var parameters: Parameters
    /// Threshold masking with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// The mask on the magnitude's grid (first frame used).
    public func apply(magnitude: Volume<Float>, context: StageContext) throws(QSMError) -> Mask {
        try validateParameters()
        let values = magnitude.frame(0).voxels
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .invalidFile("magnitude", "non-finite value at voxel index \(bad)")
        }
        let threshold = parameters.rule == .otsu ? Self.otsuThreshold(values)
            : Self.percentileThreshold(values, fraction: Float(parameters.fraction))
        var mask = values.map { $0 > threshold }
        guard mask.contains(true) else { throw .invalidFile("magnitude", "no voxel is above the threshold \(threshold)") }
        let shape = magnitude.grid.shape
        if parameters.fillHoles { mask = Morphology.fillHoles(mask, shape: shape) }
        mask = Morphology.erode(mask, shape: shape, times: parameters.erosions)
        guard mask.contains(true) else {
            throw .invalidParameter("mask.erosions", "\(parameters.erosions) erosions leave an empty mask")
        }
        return try Volume(grid: magnitude.grid, voxels: mask)
    }

    /// Otsu's threshold on a 256-bin histogram between the minimum and maximum.
    static func otsuThreshold(_ values: [Float]) -> Float {
        guard let lo = values.min(), let hi = values.max(), hi > lo else { return values.first ?? 0 }
        let bins = 256
        var histogram = [Double](repeating: 0, count: bins)
        let scale = Float(bins) / (hi - lo)
        for v in values { histogram[min(bins - 1, Int((v - lo) * scale))] += 1 }
        let total = Double(values.count)
        var sumAll = 0.0
        for b in 0..<bins { sumAll += Double(b) * histogram[b] }
        var weightBelow = 0.0, sumBelow = 0.0, best = -1.0, bestBin = 0
        for b in 0..<bins - 1 {
            weightBelow += histogram[b]; sumBelow += Double(b) * histogram[b]
            let weightAbove = total - weightBelow
            guard weightBelow > 0, weightAbove > 0 else { continue }
            let meanBelow = sumBelow / weightBelow, meanAbove = (sumAll - sumBelow) / weightAbove
            let between = weightBelow * weightAbove * (meanBelow - meanAbove) * (meanBelow - meanAbove)
            if between > best { best = between; bestBin = b }
        }
        return lo + Float(bestBin + 1) / scale        // upper edge of the last bin of the lower class
    }

    /// p2 + fraction·(p98 − p2).
    static func percentileThreshold(_ values: [Float], fraction: Float) -> Float {
        let sorted = values.sorted()
        let p2 = sorted[Int(0.02 * Double(sorted.count - 1))], p98 = sorted[Int(0.98 * Double(sorted.count - 1))]
        return p2 + fraction * (p98 - p2)
    }
}
