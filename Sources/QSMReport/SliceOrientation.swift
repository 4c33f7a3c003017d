/// A slice plane through a volume, named for RAS-like voxel storage (x left→right, y posterior→anterior, z inferior→superior).
public enum SliceOrientation: String, CaseIterable, Sendable {
    /// The z = constant plane, drawn with x to the right and y upward.
    case axial
    /// The y = constant plane, drawn with x to the right and z upward.
    case coronal
    /// The x = constant plane, drawn with y to the right and z upward.
    case sagittal

    /// The voxel axes (0 x, 1 y, 2 z) drawn to the right and upward.
    var inPlaneAxes: (horizontal: Int, vertical: Int) {
        switch self {
        case .axial: return (0, 1)
        case .coronal: return (0, 2)
        case .sagittal: return (1, 2)
        }
    }

    /// The voxel axis the plane cuts across.
    var normalAxis: Int {
        switch self {
        case .axial: return 2
        case .coronal: return 1
        case .sagittal: return 0
        }
    }
}
