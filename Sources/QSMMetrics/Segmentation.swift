import QSMCore

/// Integer label maps (segmentations) for regional metrics.
public enum Segmentation {
    /// Labels of the QSM challenge 2.0 head phantom (Marques JP, et al. MRM 2021;86:526–542,
    /// doi:10.1002/mrm.28716), the numbering used by qsm-forward and qsm-ci.
    public static let challengeLabelNames: [Int: String] = [
        1: "caudate", 2: "globus_pallidus", 3: "putamen", 4: "red_nucleus", 5: "dentate_nucleus",
        6: "substantia_nigra", 7: "thalamus", 8: "white_matter", 9: "grey_matter", 10: "csf",
        11: "blood", 13: "bone", 14: "air", 15: "muscle", 16: "calcification",
    ]
    /// Deep grey matter nuclei (labels 1–6).
    public static let deepGreyMatterLabels: Set<Int> = [1, 2, 3, 4, 5, 6]
    /// Tissue: thalamus, white matter, grey matter (labels 7–9).
    public static let tissueLabels: Set<Int> = [7, 8, 9]
    /// Vessels (label 11).
    public static let bloodLabel = 11
    /// Calcification (label 16).
    public static let calcificationLabel = 16

    /// Labels rounded to the nearest integer (ties to even, as numpy `rint`); throws for non-finite
    /// or out-of-range values, naming the volume `name`.
    public static func labels<T: BinaryFloatingPoint & Sendable>(
        from volume: Volume<T>, name: String = "segmentation"
    ) throws(QSMError) -> Volume<Int> {
        guard volume.frames == 1 else { throw .mismatch(name, "has \(volume.frames) frames; a 3-D label map is needed") }
        var out = Volume<Int>(grid: volume.grid, repeating: 0)
        for i in 0..<volume.grid.count {
            let v = Double(volume.voxels[i])
            guard v.isFinite, abs(v) < 1e9 else {
                throw .invalidFile(name, "voxel index \(i) holds \(v), not an integer label")
            }
            out.voxels[i] = Int(v.rounded(.toNearestOrEven))
        }
        return out
    }
}
