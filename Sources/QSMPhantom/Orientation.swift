import QSMCore

/// Head orientation and B0 direction helpers (QSM.md §2.4).
public enum Orientation {
    /// The unit B0 direction in voxel axes after rotating the object by `angles` (degrees) about
    /// the voxel x, then y, then z axes, with B0 fixed along world z.
    ///
    /// The object rotated by R sees B0 as b̂ = Rᵀ·ẑ in its own frame, R = Rz·Ry·Rx.
    public static func b0Direction(headRotationDegrees angles: SIMD3<Double>) -> SIMD3<Double> {
        let r = rotation(degrees: angles)
        // Rᵀ·ẑ is the third row of R.
        return SIMD3(r[2][0], r[2][1], r[2][2])
    }

    /// The unit B0 direction in voxel axes at `angleDegrees` from the third voxel axis, in the x–z plane.
    public static func b0Direction(angleDegrees: Double) -> SIMD3<Double> {
        let a = angleDegrees * .pi / 180
        return SIMD3(sinDegreesSafe(a), 0, cosDegreesSafe(a))
    }

    /// An affine with `voxelSize` whose rotation R satisfies Rᵀ·ẑ = b̂, so `Grid.b0Direction()` gives b̂
    /// back; the grid centre sits at the world origin (the layout qsm-forward writes, BIDS-MEGRE.md §3).
    public static func affine(shape: SIMD3<Int>, voxelSize: SIMD3<Double>, b0Direction: SIMD3<Double>) -> Affine {
        let b = b0Direction / (b0Direction * b0Direction).sum().squareRoot()
        let r = rotationTaking(b, to: SIMD3(0, 0, 1))
        var entries = [Double](repeating: 0, count: 16)
        let centre = SIMD3<Double>(Double(shape.x - 1), Double(shape.y - 1), Double(shape.z - 1)) / 2
        for row in 0..<3 {
            var translation = 0.0
            for column in 0..<3 {
                entries[row * 4 + column] = r[row][column] * voxelSize[column]
                translation -= r[row][column] * voxelSize[column] * centre[column]
            }
            entries[row * 4 + 3] = translation
        }
        entries[15] = 1
        return Affine(rowMajor: entries)
    }

    /// R = Rz·Ry·Rx for rotations by `degrees` about x, y, z (right-handed), as rows.
    static func rotation(degrees: SIMD3<Double>) -> [[Double]] {
        let (a, b, c) = (degrees.x * .pi / 180, degrees.y * .pi / 180, degrees.z * .pi / 180)
        let rx = [[1, 0, 0], [0, cosDegreesSafe(a), -sinDegreesSafe(a)], [0, sinDegreesSafe(a), cosDegreesSafe(a)]]
        let ry = [[cosDegreesSafe(b), 0, sinDegreesSafe(b)], [0, 1, 0], [-sinDegreesSafe(b), 0, cosDegreesSafe(b)]]
        let rz = [[cosDegreesSafe(c), -sinDegreesSafe(c), 0], [sinDegreesSafe(c), cosDegreesSafe(c), 0], [0, 0, 1]]
        return multiply(rz, multiply(ry, rx))
    }

    /// The rotation (rows) taking unit vector `a` onto unit vector `b` (Rodrigues' formula).
    static func rotationTaking(_ a: SIMD3<Double>, to b: SIMD3<Double>) -> [[Double]] {
        let v = SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
        let c = (a * b).sum()
        let s2 = (v * v).sum()
        if s2 < 1e-24 {
            // Parallel: identity; antiparallel: a half turn about x (B0's sign does not matter, but
            // the affine must stay a proper rotation).
            return c > 0 ? [[1, 0, 0], [0, 1, 0], [0, 0, 1]] : [[1, 0, 0], [0, -1, 0], [0, 0, -1]]
        }
        let k = [[0, -v.z, v.y], [v.z, 0, -v.x], [-v.y, v.x, 0]]
        let k2 = multiply(k, k)
        let f = (1 - c) / s2
        return (0..<3).map { r in (0..<3).map { col in (r == col ? 1 : 0) + k[r][col] + k2[r][col] * f } }
    }

    static func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        (0..<3).map { r in (0..<3).map { c in (0..<3).reduce(0) { $0 + a[r][$1] * b[$1][c] } } }
    }
}

// Exact zeros at multiples of 90° keep axis-aligned orientations exactly axis-aligned.
@inline(__always) func sinDegreesSafe(_ radians: Double) -> Double {
    let q = radians / (.pi / 2)
    if q == q.rounded() {
        switch ((Int(q) % 4) + 4) % 4 { case 0, 2: return 0; case 1: return 1; default: return -1 }
    }
    return Double.sin(radians)
}

@inline(__always) func cosDegreesSafe(_ radians: Double) -> Double {
    let q = radians / (.pi / 2)
    if q == q.rounded() {
        switch ((Int(q) % 4) + 4) % 4 { case 1, 3: return 0; case 0: return 1; default: return -1 }
    }
    return Double.cos(radians)
}
