/// Mean and standard deviation of χ per segmentation label, for the reporting table the 2024 QSM
/// consensus asks for (ISMRM EMTP study group, MRM 2024;91:1834–1862, doi:10.1002/mrm.30006).
public struct LabelStatistics: Codable, Sendable, Equatable {
    /// The integer label.
    public var label: Int
    /// A readable name (challenge phantom numbering) or `label-<n>`.
    public var name: String
    /// Number of voxels with this label inside the mask.
    public var voxels: Int
    /// Mean of the reconstruction over those voxels (ppm).
    public var reconMean: Double
    /// Population standard deviation of the reconstruction (ppm).
    public var reconStd: Double
    /// Mean of the truth (ppm).
    public var truthMean: Double
    /// Population standard deviation of the truth (ppm).
    public var truthStd: Double

    enum CodingKeys: String, CodingKey {
        case label, name, voxels
        case reconMean = "recon_mean", reconStd = "recon_std", truthMean = "truth_mean", truthStd = "truth_std"
    }

    /// Statistics of every non-zero label with at least `minimumVoxels` voxels in `mask`, sorted by label.
    public static func compute(recon: [Double], truth: [Double], labels: [Int], mask: [Bool],
                               minimumVoxels: Int = 1) -> [LabelStatistics] {
        precondition(recon.count == truth.count && labels.count == recon.count && mask.count == recon.count)
        // Dense accumulators over the label range: two passes (means, then squared deviations).
        var low = Int.max, high = Int.min
        for i in labels.indices where mask[i] && labels[i] != 0 { low = min(low, labels[i]); high = max(high, labels[i]) }
        guard low <= high else { return [] }
        guard high - low < 1 << 20 else {
            // Sparse label values: fall back to the labels actually present.
            let present = Set(labels.indices.lazy.filter { mask[$0] && labels[$0] != 0 }.map { labels[$0] })
            return present.sorted().compactMap { label in
                let members = labels.indices.filter { mask[$0] && labels[$0] == label }
                return statistics(label, members.map { recon[$0] }, members.map { truth[$0] }, minimumVoxels)
            }
        }
        let size = high - low + 1
        var count = [Int](repeating: 0, count: size), sumR = [Double](repeating: 0, count: size), sumT = sumR
        for i in labels.indices where mask[i] && labels[i] != 0 {
            let k = labels[i] - low
            count[k] += 1; sumR[k] += recon[i]; sumT[k] += truth[i]
        }
        let meanR = zip(sumR, count).map { $0 / Double(max($1, 1)) }, meanT = zip(sumT, count).map { $0 / Double(max($1, 1)) }
        var squaresR = [Double](repeating: 0, count: size), squaresT = squaresR
        for i in labels.indices where mask[i] && labels[i] != 0 {
            let k = labels[i] - low
            let dr = recon[i] - meanR[k], dt = truth[i] - meanT[k]
            squaresR[k] += dr * dr; squaresT[k] += dt * dt
        }
        return (0..<size).compactMap { k in
            guard count[k] > 0, count[k] >= minimumVoxels else { return nil }
            let label = k + low, n = Double(count[k])
            return LabelStatistics(label: label, name: Segmentation.challengeLabelNames[label] ?? "label-\(label)",
                                   voxels: count[k], reconMean: meanR[k], reconStd: (squaresR[k] / n).squareRoot(),
                                   truthMean: meanT[k], truthStd: (squaresT[k] / n).squareRoot())
        }
    }

    private static func statistics(_ label: Int, _ recon: [Double], _ truth: [Double], _ minimumVoxels: Int) -> LabelStatistics? {
        guard !recon.isEmpty, recon.count >= minimumVoxels else { return nil }
        let (rm, rs) = meanAndStd(recon), (tm, ts) = meanAndStd(truth)
        return LabelStatistics(label: label, name: Segmentation.challengeLabelNames[label] ?? "label-\(label)",
                               voxels: recon.count, reconMean: rm, reconStd: rs, truthMean: tm, truthStd: ts)
    }
}

/// Mean and population standard deviation (two passes).
func meanAndStd(_ values: [Double]) -> (Double, Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let n = Double(values.count)
    let mean = values.reduce(0, +) / n
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
    return (mean, variance.squareRoot())
}
