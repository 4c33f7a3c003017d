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
        var groups: [Int: [Int]] = [:]
        for i in labels.indices where mask[i] && labels[i] != 0 { groups[labels[i], default: []].append(i) }
        return groups.keys.sorted().compactMap { label in
            let indices = groups[label]!
            guard indices.count >= max(1, minimumVoxels) else { return nil }
            let (rm, rs) = meanAndStd(indices.map { recon[$0] })
            let (tm, ts) = meanAndStd(indices.map { truth[$0] })
            return LabelStatistics(label: label, name: Segmentation.challengeLabelNames[label] ?? "label-\(label)",
                                   voxels: indices.count, reconMean: rm, reconStd: rs, truthMean: tm, truthStd: ts)
        }
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
