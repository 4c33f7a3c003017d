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
        /// Threshold rule. Default: QSM.rs `MaskingConfig` thresholds with Otsu.
        public var rule = ThresholdRule.otsu
        /// Fraction of the 2–98 % robust range for the percentile rule, in (0, 1). Default: BET, Smith 2002.
        public var fraction = 0.1
        /// Fill enclosed holes. Default: QSM.rs `FillHoles`.
        public var fillHoles = true
        /// 6-connected erosions after filling, ≥ 0. Default: QSM.rs `Erode{1}`.
        public var erosions = 1
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.choice("rule", \.rule, "Threshold rule: otsu (default; QSM.rs MaskingConfig) or percentile (BET robust threshold)."),
             .real("fraction", \.fraction, in: .openUnit, "Fraction of the 2–98 % range for the percentile rule. Default: Smith 2002."),
             .flag("fillHoles", \.fillHoles, "Fill enclosed holes. Default: QSM.rs FillHoles."),
             .integer("erosions", \.erosions, in: 0...100, "6-connected erosions after filling. Default: QSM.rs Erode{1}.")]
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
        // The first frame, read in place (no 46 MB copy out of a multi-echo volume).
        let n = magnitude.grid.count, fraction = Float(parameters.fraction), rule = parameters.rule
        let (bad, threshold, thresholded) = magnitude.withVoxels { all -> (Int?, Float, [Bool]) in
            let values = UnsafeBufferPointer(rebasing: all[0..<n])
            guard let range = VoxelLoop.finiteRange(values) else { return (values.firstIndex { !$0.isFinite }, 0, []) }
            let threshold = rule == .otsu ? Self.otsuThreshold(values, range: range) : Self.percentileThreshold(values, fraction: fraction)
            let p = ReadPointer(values.baseAddress!)
            // Every flag written once, in parallel (no serial zero fill first).
            let flags = [Bool](unsafeUninitializedCapacity: n) { buffer, initialized in
                guard let base = buffer.baseAddress else { initialized = 0; return }
                let op = SendablePointer(base)
                parallelFor(0..<n) { r in for i in r { op[i] = p[i] > threshold } }
                initialized = n
            }
            return (nil, threshold, flags)
        }
        if let bad { throw .invalidFile("magnitude", "non-finite value at voxel index \(bad)") }
        var mask = thresholded
        guard VoxelLoop.anyTrue(mask) else { throw .invalidFile("magnitude", "no voxel is above the threshold \(threshold)") }
        let shape = magnitude.grid.shape
        if parameters.fillHoles { mask = Morphology.fillHoles(mask, shape: shape) }
        mask = Morphology.erode(mask, shape: shape, times: parameters.erosions)
        guard VoxelLoop.anyTrue(mask) else {
            throw .invalidParameter("mask.erosions", "\(parameters.erosions) erosions leave an empty mask")
        }
        return try Volume(grid: magnitude.grid, voxels: mask)
    }

    /// Otsu's threshold on a 256-bin histogram between the minimum and maximum (`range`) of finite values.
    static func otsuThreshold(_ buffer: UnsafeBufferPointer<Float>, range: (low: Float, high: Float)) -> Float {
        let bins = 256
        let values = ReadPointer(buffer.baseAddress!), count = buffer.count
        let chunks = max(1, min(64, count / 65536))
        let lo = range.low, hi = range.high
        guard hi > lo else { return count > 0 ? values[0] : 0 }
        let scale = Float(bins) / (hi - lo)
        // Integer counts in fixed chunks (same result on any thread count); four interleaved
        // sub-histograms so runs of equal values (background) do not serialise on one counter.
        var partial = [Int32](repeating: 0, count: chunks * bins)
        partial.withUnsafeMutableBufferPointer { pb in
            let pp = SendablePointer(pb.baseAddress!)
            parallelFor(0..<chunks) { cs in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: 4 * bins) { local in
                    for c in cs {
                        local.initialize(repeating: 0)
                        let r = count * c / chunks..<count * (c + 1) / chunks
                        var i = r.lowerBound
                        while i + 4 <= r.upperBound {
                            local[min(bins - 1, Int((values[i] - lo) * scale))] &+= 1
                            local[bins + min(bins - 1, Int((values[i + 1] - lo) * scale))] &+= 1
                            local[2 * bins + min(bins - 1, Int((values[i + 2] - lo) * scale))] &+= 1
                            local[3 * bins + min(bins - 1, Int((values[i + 3] - lo) * scale))] &+= 1
                            i += 4
                        }
                        while i < r.upperBound { local[min(bins - 1, Int((values[i] - lo) * scale))] &+= 1; i += 1 }
                        for b in 0..<bins { pp[c * bins + b] = local[b] &+ local[bins + b] &+ local[2 * bins + b] &+ local[3 * bins + b] }
                    }
                }
            }
        }
        var histogram = [Double](repeating: 0, count: bins)
        for c in 0..<chunks { for b in 0..<bins { histogram[b] += Double(partial[c * bins + b]) } }
        let total = Double(count)
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
    static func percentileThreshold(_ values: UnsafeBufferPointer<Float>, fraction: Float) -> Float {
        let sorted = values.sorted()
        let p2 = sorted[Int(0.02 * Double(sorted.count - 1))], p98 = sorted[Int(0.98 * Double(sorted.count - 1))]
        return p2 + fraction * (p98 - p2)
    }
}
