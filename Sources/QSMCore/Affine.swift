/// A 4×4 homogeneous matrix mapping voxel indices (i, j, k) to world coordinates (mm, RAS).
public struct Affine: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The 16 entries, row-major.
    public var entries: [Double]

    /// The matrix with the given 16 row-major entries.
    public init(rowMajor entries: [Double]) {
        precondition(entries.count == 16, "an affine has 16 entries")
        self.entries = entries
    }

    /// A diagonal affine with the given voxel size (mm) and the origin at voxel (0, 0, 0).
    public static func scaling(_ voxelSize: SIMD3<Double>) -> Affine {
        Affine(rowMajor: [voxelSize.x, 0, 0, 0, 0, voxelSize.y, 0, 0, 0, 0, voxelSize.z, 0, 0, 0, 0, 1])
    }

    /// Entry at row `row`, column `column` (0-based).
    public subscript(row: Int, column: Int) -> Double {
        get { entries[row * 4 + column] }
        set { entries[row * 4 + column] = newValue }
    }

    /// The world position (mm) of a voxel index.
    public func world(_ index: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3((0..<3).map { r in self[r, 0] * index.x + self[r, 1] * index.y + self[r, 2] * index.z + self[r, 3] })
    }

    /// The voxel sizes (mm): the norms of the first three columns.
    public var columnNorms: SIMD3<Double> {
        SIMD3((0..<3).map { c in ((0..<3).map { self[$0, c] * self[$0, c] }.reduce(0, +)).squareRoot() })
    }

    /// Matrix product `self · other`.
    public static func * (lhs: Affine, rhs: Affine) -> Affine {
        var out = [Double](repeating: 0, count: 16)
        for r in 0..<4 { for c in 0..<4 { for k in 0..<4 { out[r * 4 + c] += lhs[r, k] * rhs[k, c] } } }
        return Affine(rowMajor: out)
    }

    /// A world direction (e.g. B0, scanner z) expressed as a unit vector in voxel axes.
    ///
    /// b̂_voxel = Rᵀ·d where the upper 3×3 block is R·diag(voxel size) (QSM.md §2.4). The result is the
    /// direction to use in a dipole kernel built on physical k.
    public func voxelDirection(ofWorld direction: SIMD3<Double>) -> SIMD3<Double> {
        let sizes = columnNorms
        var v = SIMD3<Double>(repeating: 0)
        for c in 0..<3 {
            let column = SIMD3(self[0, c], self[1, c], self[2, c]) / sizes[c]
            v[c] = (column * direction).sum()
        }
        let norm = (v * v).sum().squareRoot()
        return norm > 0 ? v / norm : v
    }

    public var description: String {
        (0..<4).map { r in (0..<4).map { c in "\(self[r, c])" }.joined(separator: " ") }.joined(separator: "; ")
    }
}
