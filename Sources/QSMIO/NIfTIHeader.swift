/// The fields of a NIfTI-1 or NIfTI-2 header that qsmbench reads and writes, in float64/Int
/// whatever the version (NIfTI-1 float32 fields are widened exactly).
///
/// Field names follow the standard (nifti1.h / nifti2.h) in full words; geometry helpers
/// (`qformAffine`, `sformAffine`, `bestAffine`, `scaling`) apply the rules nibabel applies.
public struct NIfTIHeader: Sendable, Equatable {
    /// NIfTI-1 or NIfTI-2.
    public var version: NIfTIVersion = .nifti1
    /// Byte order of the file (qsmbench writes little endian).
    public var isLittleEndian = true
    /// Voxel data type (`datatype`).
    public var datatype: NIfTIDataType = .float32
    /// `bitpix` as stored (not checked against the data type, like nibabel).
    public var bitsPerVoxel = 32
    /// `dim[0…7]`: `dim[0]` is the number of dimensions, `dim[1…]` the sizes.
    public var dim: [Int] = [3, 1, 1, 1, 1, 1, 1, 1]
    /// `pixdim[0…7]`: `pixdim[0]` is qfac (−1 flips the third qform axis), `pixdim[1…3]` voxel size.
    public var pixdim: [Double] = [1, 1, 1, 1, 1, 1, 1, 1]
    /// Byte offset of the voxel data in the file (`vox_offset`).
    public var voxelOffset = 352
    /// `scl_slope` as stored (see `scaling` for how it is applied).
    public var slope = 1.0
    /// `scl_inter` as stored.
    public var intercept = 0.0
    /// `cal_min`, `cal_max`: display range.
    public var calibrationMinimum = 0.0, calibrationMaximum = 0.0
    /// `xyzt_units`: spatial unit code in bits 0–2 (2 = mm), temporal in bits 3–5 (8 = s).
    public var units = 10
    /// `dim_info`: frequency, phase and slice dimensions packed in 2 bits each.
    public var dimensionInfo = 0
    /// `intent_code` (statistic or meaning of the values; 0 none).
    public var intentCode = 0
    /// `intent_p1`, `intent_p2`, `intent_p3`.
    public var intentParameters: [Double] = [0, 0, 0]
    /// `intent_name` (at most 15 bytes are kept).
    public var intentName = ""
    /// `slice_code`, `slice_start`, `slice_end`: slice acquisition order and range.
    public var sliceCode = 0, sliceStart = 0, sliceEnd = 0
    /// `slice_duration` in the temporal unit.
    public var sliceDuration = 0.0
    /// `toffset`: time axis shift.
    public var timeOffset = 0.0
    /// `descrip` (at most 79 bytes are kept).
    public var description = ""
    /// `aux_file` (at most 23 bytes are kept).
    public var auxiliaryFile = ""
    /// `qform_code`: 0 unknown, 1 scanner, 2 aligned, 3 Talairach, 4 MNI, 5 template.
    public var qformCode = 0
    /// `sform_code`, same codes as `qformCode`.
    public var sformCode = 0
    /// `quatern_b`, `quatern_c`, `quatern_d`: the qform rotation (a = √(1 − b² − c² − d²)).
    public var quaternion = SIMD3<Double>(0, 0, 0)
    /// `qoffset_x`, `qoffset_y`, `qoffset_z` (mm).
    public var quaternionOffset = SIMD3<Double>(0, 0, 0)
    /// `srow_x`, `srow_y`, `srow_z`: the sform's first three rows, row-major (12 entries).
    public var sformRows: [Double] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]

    /// An identity-geometry float32 header (edit the fields, or use `NIfTI.write`).
    public init() {}

    // MARK: - Derived values

    /// Number of voxels along x, y, z (1 for axes beyond `dim[0]`).
    public var shape: SIMD3<Int> {
        SIMD3((1...3).map { $0 <= rank ? dim[$0] : 1 })
    }

    /// `dim[0]` clamped to the 0…7 the array can hold (hand-edited headers may hold anything).
    private var rank: Int { dim.count == 8 ? min(max(dim[0], 0), 7) : 0 }

    /// Number of 3-D frames: the product of `dim[4…dim[0]]`.
    public var frames: Int {
        rank < 4 ? 1 : (4...rank).reduce(1) { $0 &* dim[$1] }
    }

    /// Voxel size (mm): |pixdim[1…3]| (1 for axes beyond `dim[0]`, as nibabel's zooms).
    public var voxelSize: SIMD3<Double> {
        SIMD3((1...3).map { $0 <= rank && pixdim.count == 8 ? abs(pixdim[$0]) : 1 })
    }

    /// The `(slope, intercept)` to apply to stored values, or nil when none applies: nibabel ignores
    /// both fields when `scl_slope` is 0 or not finite.
    public var scaling: (slope: Double, intercept: Double)? {
        guard slope != 0, slope.isFinite else { return nil }
        if slope == 1 && intercept == 0 { return nil }
        return (slope, intercept)
    }

    /// The affine built from the quaternion (NIfTI-1 method 2), regardless of `qformCode`.
    ///
    /// R from (a, b, c, d) as in nifti1.h; columns scaled by |pixdim[1…3]|, the third also by qfac,
    /// which is −1 when `pixdim[0]` < 0 and +1 otherwise (the standard treats 0 as +1).
    public var qformAffine: Affine {
        let (b, c, d) = (quaternion.x, quaternion.y, quaternion.z)
        // Rounding in stored quaternions can push b²+c²+d² slightly above 1; a is then 0.
        let a = max(0, 1 - (b * b + c * c + d * d)).squareRoot()
        let rotation: [[Double]] = [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - b * b - c * c],
        ]
        let pixdim = self.pixdim.count == 8 ? self.pixdim : [1, 1, 1, 1, 1, 1, 1, 1]
        let qfac: Double = pixdim[0] < 0 ? -1 : 1
        let scale = [abs(pixdim[1]), abs(pixdim[2]), abs(pixdim[3]) * qfac]
        var entries = [Double](repeating: 0, count: 16)
        for row in 0..<3 {
            for column in 0..<3 { entries[row * 4 + column] = rotation[row][column] * scale[column] }
            entries[row * 4 + 3] = quaternionOffset[row]
        }
        entries[15] = 1
        return Affine(rowMajor: entries)
    }

    /// The affine from `srow_x/y/z` (NIfTI-1 method 3), regardless of `sformCode`.
    public var sformAffine: Affine {
        sformRows.count == 12 ? Affine(rowMajor: sformRows + [0, 0, 0, 1]) : .scaling(.one)
    }

    /// The diagonal affine from |pixdim[1…3]| with the origin at voxel 0 (NIfTI-1 method 1).
    public var pixdimAffine: Affine { .scaling(voxelSize) }

    /// Which of the three affines `bestAffine` uses.
    public enum AffineSource: String, Sendable {
        /// `srow_x/y/z` (sform_code > 0).
        case sform
        /// The quaternion (qform_code > 0, sform_code = 0).
        case qform
        /// Voxel sizes only (both codes 0).
        case pixdim
    }

    /// sform if `sformCode` > 0, else qform if `qformCode` > 0, else the pixdim scaling.
    ///
    /// The first two steps are nibabel's `get_best_affine`. With both codes 0 nibabel returns an
    /// Analyze-style affine (x flipped, origin at the centre); qsmbench follows the NIfTI-1
    /// standard's method 1 instead (diag(pixdim), origin at voxel 0), see docs/NIFTI.md.
    public var bestAffineSource: AffineSource {
        sformCode > 0 ? .sform : qformCode > 0 ? .qform : .pixdim
    }

    /// The voxel-to-world affine by `bestAffineSource`.
    public var bestAffine: Affine {
        switch bestAffineSource {
        case .sform: sformAffine
        case .qform: qformAffine
        case .pixdim: pixdimAffine
        }
    }

    /// Throws unless the array fields have their fixed lengths and the dimensions are usable
    /// (guards `write(_: NIfTIImage)` against hand-edited headers).
    func checkWritable(path: String) throws(QSMError) {
        guard dim.count == 8, pixdim.count == 8, sformRows.count == 12, intentParameters.count == 3 else {
            throw .invalidFile(path, "cannot write: header arrays need 8 dim, 8 pixdim, 12 srow and 3 intent values")
        }
        guard (1...7).contains(dim[0]), dim[1...dim[0]].allSatisfy({ $0 > 0 }), dataByteCount != nil else {
            throw .invalidFile(path, "cannot write: dim \(dim) does not describe a non-empty array")
        }
        if version == .nifti1, dim[1...dim[0]].contains(where: { $0 > Int(Int16.max) }) {
            throw .invalidFile(path, "cannot write: a dimension exceeds NIfTI-1's 32767; use NIfTI-2")
        }
    }

    /// Total voxel count over all dimensions; nil if it overflows.
    var voxelCount: Int? {
        guard rank > 0 else { return nil }
        var count = 1
        for axis in 1...rank {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim[axis])
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Number of bytes of voxel data the header describes; nil if it overflows.
    var dataByteCount: Int? {
        guard let count = voxelCount else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: datatype.byteCount)
        return overflow ? nil : bytes
    }

    /// "64×64×32" or "64×64×32×4".
    var shapeText: String {
        rank > 0 ? (1...rank).map { "\(dim[$0])" }.joined(separator: "×") : "\(dim)"
    }
}

// MARK: - Geometry for writing

extension NIfTIHeader {
    /// Sets sform and qform (both with `code`) and pixdim[0…3] from `affine`.
    ///
    /// pixdim[1…3] are the affine's column norms. The qform rotation is the nearest rotation to the
    /// normalised 3×3 block (after moving a reflection into qfac = −1), so a sheared affine is kept
    /// exactly by the sform and approximately by the qform.
    mutating func setGeometry(_ affine: Affine, code: Int) {
        sformRows = Array(affine.entries[0..<12])
        sformCode = code
        qformCode = code
        var norms = affine.columnNorms
        for axis in 0..<3 where !(norms[axis] > 0 && norms[axis].isFinite) { norms[axis] = 1 }
        var rotation = (0..<3).map { row in (0..<3).map { column in affine[row, column] / norms[column] } }
        var qfac = 1.0
        if determinant(rotation) < 0 {
            qfac = -1
            for row in 0..<3 { rotation[row][2] = -rotation[row][2] }
        }
        rotation = nearestRotation(rotation)
        quaternion = Self.quaternion(of: rotation)
        quaternionOffset = SIMD3(affine[0, 3], affine[1, 3], affine[2, 3])
        pixdim[0] = qfac
        pixdim[1] = norms.x
        pixdim[2] = norms.y
        pixdim[3] = norms.z
    }

    /// (b, c, d) of the unit quaternion with a ≥ 0 for a proper rotation matrix.
    ///
    /// Branches on the largest diagonal combination so the square root is never taken of a small
    /// number (Shepperd, J. Guid. Control 1978, doi:10.2514/3.55767b).
    static func quaternion(of r: [[Double]]) -> SIMD3<Double> {
        var a: Double, b: Double, c: Double, d: Double
        let trace = r[0][0] + r[1][1] + r[2][2]
        if trace > 0 {
            let s = 0.5 * (trace + 1).squareRoot()  // s = a
            a = s
            b = 0.25 * (r[2][1] - r[1][2]) / s
            c = 0.25 * (r[0][2] - r[2][0]) / s
            d = 0.25 * (r[1][0] - r[0][1]) / s
        } else if r[0][0] >= r[1][1] && r[0][0] >= r[2][2] {
            b = 0.5 * (1 + r[0][0] - r[1][1] - r[2][2]).squareRoot()
            a = 0.25 * (r[2][1] - r[1][2]) / b
            c = 0.25 * (r[0][1] + r[1][0]) / b
            d = 0.25 * (r[0][2] + r[2][0]) / b
        } else if r[1][1] >= r[2][2] {
            c = 0.5 * (1 + r[1][1] - r[0][0] - r[2][2]).squareRoot()
            a = 0.25 * (r[0][2] - r[2][0]) / c
            b = 0.25 * (r[0][1] + r[1][0]) / c
            d = 0.25 * (r[1][2] + r[2][1]) / c
        } else {
            d = 0.5 * (1 + r[2][2] - r[0][0] - r[1][1]).squareRoot()
            a = 0.25 * (r[1][0] - r[0][1]) / d
            b = 0.25 * (r[0][2] + r[2][0]) / d
            c = 0.25 * (r[1][2] + r[2][1]) / d
        }
        // q and −q are the same rotation; the header stores the one with a ≥ 0.
        if a < 0 { (b, c, d) = (-b, -c, -d) }
        return SIMD3(b, c, d)
    }
}

/// Determinant of a 3×3 matrix.
private func determinant(_ m: [[Double]]) -> Double {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The orthogonal factor of the polar decomposition of `m` (det > 0 assumed), by the Newton
/// iteration X ← (X + X⁻ᵀ)/2 (Higham, SIAM J. Sci. Stat. Comput. 1986, doi:10.1137/0907079).
/// A rotation is a fixed point, so rotation×scaling affines pass through unchanged.
private func nearestRotation(_ m: [[Double]]) -> [[Double]] {
    var x = m
    for _ in 0..<50 {
        let det = determinant(x)
        guard det.isFinite, abs(det) > 1e-12 else { return [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }
        // X⁻ᵀ = cofactor(X) / det.
        var inverseTranspose = x
        for i in 0..<3 {
            for j in 0..<3 {
                let (i1, i2) = ((i + 1) % 3, (i + 2) % 3)
                let (j1, j2) = ((j + 1) % 3, (j + 2) % 3)
                inverseTranspose[i][j] = (x[i1][j1] * x[i2][j2] - x[i1][j2] * x[i2][j1]) / det
            }
        }
        var change = 0.0
        for i in 0..<3 {
            for j in 0..<3 {
                let next = 0.5 * (x[i][j] + inverseTranspose[i][j])
                change = max(change, abs(next - x[i][j]))
                x[i][j] = next
            }
        }
        if change < 1e-15 { break }
    }
    return x
}
