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
        try susceptibility.grid.requireMatches(mask.grid, "susceptibility", "mask")
        guard susceptibility.frames == 1 else {
            throw .mismatch("susceptibility", "has \(susceptibility.frames) frames; expected one 3-D volume")
        }
        let insideCount = mask.insideCount
        guard insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
        // Over the whole mask, the Double sum is finite exactly when every value in the mask is (a
        // sum of finite Floats cannot overflow a Double), so the finiteness check needs no pass of
        // its own; a label region needs one.
        if parameters.label != 0 { try susceptibility.requireFinite(in: mask, "susceptibility") }
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
        let count = susceptibility.grid.count
        let sum = susceptibility.withVoxels { vb in region.withVoxels { rb in
            let values = ReadPointer(vb.baseAddress!), inRegion = ReadPointer(rb.baseAddress!)
            return VoxelLoop.chunkedSum(count: count) { r in
                var s = 0.0
                for i in r where inRegion[i] { s += Double(values[i]) }
                return s
            }
        } }
        if !sum.isFinite { try susceptibility.requireFinite(in: mask, "susceptibility") }
        let mean = Float(sum / Double(parameters.label != 0 ? region.insideCount : insideCount))
        let referenced = [Float](unsafeUninitializedCapacity: count) { ob, initialized in
            susceptibility.withVoxels { vb in mask.withVoxels { mb in
                let values = ReadPointer(vb.baseAddress!), inside = ReadPointer(mb.baseAddress!)
                let out = SendablePointer(ob.baseAddress!)
                parallelFor(0..<count) { r in for i in r { out[i] = inside[i] ? values[i] - mean : 0 } }
            } }
            initialized = count
        }
        return try Volume(grid: susceptibility.grid, voxels: referenced)
    }
}
