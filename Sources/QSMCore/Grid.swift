/// The geometry of a 3-D voxel grid: shape, voxel size (mm) and affine.
///
/// Arrays are stored x fastest (NIfTI order): index = x + nx·(y + ny·z).
public struct Grid: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Number of voxels along x, y, z.
    public var shape: SIMD3<Int>
    /// Voxel size along x, y, z in mm.
    public var voxelSize: SIMD3<Double>
    /// Voxel-to-world (mm) transform.
    public var affine: Affine

    /// A grid; the affine defaults to a diagonal scaling by `voxelSize`.
    public init(shape: SIMD3<Int>, voxelSize: SIMD3<Double> = .one, affine: Affine? = nil) {
        self.shape = shape
        self.voxelSize = voxelSize
        self.affine = affine ?? .scaling(voxelSize)
    }

    /// Number of voxels.
    public var count: Int { shape.x * shape.y * shape.z }

    /// Linear index of voxel (x, y, z).
    @inlinable public func index(_ x: Int, _ y: Int, _ z: Int) -> Int { x + shape.x * (y + shape.y * z) }

    /// B0 (world direction, default scanner z) expressed in voxel axes through the affine.
    public func b0Direction(world: SIMD3<Double> = SIMD3(0, 0, 1)) -> SIMD3<Double> {
        affine.voxelDirection(ofWorld: world)
    }

    /// Throws unless `other` has the same shape (and voxel size within 1e-4 mm).
    public func requireMatches(_ other: Grid, _ name: String, _ otherName: String) throws(QSMError) {
        guard shape == other.shape else {
            throw .mismatch(otherName, "shape \(other.shapeText) differs from \(name) (\(shapeText))")
        }
        let d = voxelSize - other.voxelSize
        guard (d * d).max() < 1e-8 else {
            throw .mismatch(otherName, "voxel size \(other.voxelSize) differs from \(name) (\(voxelSize))")
        }
    }

    /// "nx×ny×nz".
    public var shapeText: String { "\(shape.x)×\(shape.y)×\(shape.z)" }

    public var description: String { "\(shapeText) @ \(voxelSize.x)×\(voxelSize.y)×\(voxelSize.z) mm" }
}
