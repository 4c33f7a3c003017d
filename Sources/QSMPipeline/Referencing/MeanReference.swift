import QSMCore

/// Subtracts the mean of χ over a reference region: the whole mask, or one label of a segmentation.
///
/// Mean-of-mask referencing is QSM.rs's default (`QsmReference::Mean`, QSM.md §8); a label gives
/// e.g. CSF referencing (Liu Z, Spincemaille P, Yao Y, Zhang Y, Wang Y. MEDI+0: Morphology enabled
/// dipole inversion with automatic uniform cerebrospinal fluid zero reference for quantitative
/// susceptibility mapping. MRM 2018;79:2795–2803. doi:10.1002/mrm.26946). The region is
/// intersected with the mask; the mean is accumulated in Double.
public struct MeanReference: Referencing {
    /// Which region to reference to.
    public struct Parameters: MethodParameters {
        /// Segmentation label of the reference region, ≥ 0; 0 means the whole mask (QSM.md §8 default).
        public var label = 0
        /// The default: the whole mask.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.integer("label", \.label, in: 0...Int(Int32.max),
                      "Segmentation label of the reference region; 0 = the whole mask (QSM.rs default, QSM.md §8).")]
        }
    }

    public static let name = "mean"
    public static let kind = StageKind.referencing
    public static let summary = "Subtract the mean over the mask or over one segmentation label"
    public var parameters: Parameters
    /// Mean referencing with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ − mean(χ over the region), zero outside `mask`.
    public func apply(susceptibility: Volume<Float>, mask: Mask, segmentation: Volume<Int32>?,
                      context: StageContext) throws(QSMError) -> Volume<Float> {
        try validateParameters()
        try InputCheck.field(susceptibility, mask: mask, name: "susceptibility")
        var region = mask
        if parameters.label != 0 {
            guard let segmentation else {
                throw .invalidParameter("reference.label", "label \(parameters.label) needs a segmentation (--seg)")
            }
            try susceptibility.grid.requireMatches(segmentation.grid, "susceptibility", "segmentation")
            let label = Int32(parameters.label)
            for i in 0..<region.voxels.count { region.voxels[i] = mask.voxels[i] && segmentation.voxels[i] == label }
            guard region.insideCount > 0 else {
                throw .invalidParameter("reference.label", "no voxel of label \(parameters.label) lies inside the mask")
            }
        }
        let mean = Float(susceptibility.mean(in: region))
        var out = susceptibility
        for i in 0..<out.voxels.count { out.voxels[i] = mask.voxels[i] ? out.voxels[i] - mean : 0 }
        return out
    }
}
