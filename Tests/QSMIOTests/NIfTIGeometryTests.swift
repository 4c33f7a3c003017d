import Foundation
import QSMIO
import Testing

/// qform (quaternion) and sform written from oblique affines read back as the same affine.
@Suite struct NIfTIGeometryTests {
    struct Case: Sendable, CustomStringConvertible {
        var axis: SIMD3<Double>, degrees: Double, zooms: SIMD3<Double>, offset: SIMD3<Double>, reflect: Bool
        var description: String { "\(degrees)° about \(axis)\(reflect ? ", reflected" : "")" }
    }

    static let cases: [Case] = [
        Case(axis: SIMD3(0, 0, 1), degrees: 0, zooms: SIMD3(1, 1, 1), offset: SIMD3(0, 0, 0), reflect: false),
        Case(axis: SIMD3(1, 0, 0), degrees: 12, zooms: SIMD3(0.5, 0.5, 2), offset: SIMD3(-90, 100, -40), reflect: false),
        Case(axis: SIMD3(1, 2, 3), degrees: 37, zooms: SIMD3(1, 1.5, 2), offset: SIMD3(12.5, -7, 3), reflect: true),
        Case(axis: SIMD3(-1, 0.3, 0.2), degrees: 95, zooms: SIMD3(0.8, 0.9, 1.1), offset: SIMD3(1, 2, 3), reflect: false),
        Case(axis: SIMD3(0.2, 1, -0.4), degrees: 150, zooms: SIMD3(2, 1, 3), offset: SIMD3(-50, 60, 70), reflect: true),
        Case(axis: SIMD3(0, 1, 0), degrees: 170, zooms: SIMD3(1.2, 1.2, 1.2), offset: SIMD3(5, 5, 5), reflect: false),
        Case(axis: SIMD3(1, 1, 0), degrees: 180, zooms: SIMD3(1, 2, 1), offset: SIMD3(0, 0, 0), reflect: true),
    ]

    @Test(arguments: cases)
    func qformAndSformRecoverObliqueAffines(_ geometry: Case) throws {
        let scratch = NIfTIScratch()
        let affine = nifTITestAffine(axis: geometry.axis, degrees: geometry.degrees, zooms: geometry.zooms,
                                     offset: geometry.offset, reflect: geometry.reflect)
        let grid = Grid(shape: SIMD3(3, 4, 5), voxelSize: geometry.zooms, affine: affine)
        let volume = try Volume(grid: grid, voxels: (0..<grid.count).map { Float($0) })
        for version in NIfTIVersion.allCases {
            let path = scratch.path("oblique-\(version.rawValue).nii.gz")
            try NIfTI.write(volume, to: path, datatype: .float32, version: version)
            let header = try NIfTI.readHeader(path)
            // NIfTI-1 stores quaternion, offsets and srows as float32: entries ≤ 100 mm round by
            // ≤ 4e-6, and a = √(1 − b² − c² − d²) loses ~1e-7/a (measured worst here: 6e-7 at
            // 170°). NIfTI-2 stores float64: 1e-9 leaves room only for double rounding.
            let qformTolerance = version == .nifti2 ? 1e-9 : 1e-5
            let sformTolerance = version == .nifti2 ? 1e-12 : 1e-5
            #expect(largestEntryDifference(header.qformAffine, affine) < qformTolerance, "\(version)")
            #expect(largestEntryDifference(header.sformAffine, affine) < sformTolerance, "\(version)")
            #expect((header.pixdim[0] == -1) == geometry.reflect)
            let b = header.quaternion
            #expect((b * b).sum() <= 1 + 1e-6)
            let back = try NIfTI.readVolume(path)
            #expect(largestEntryDifference(back.grid.affine, affine) < sformTolerance)
            for axis in 0..<3 { #expect(abs(back.grid.voxelSize[axis] - geometry.zooms[axis]) < 1e-6) }
        }
    }

    /// With sform_code 0 the qform wins; with both codes 0, diag(pixdim).
    @Test func precedenceFollowsTheCodes() throws {
        let scratch = NIfTIScratch()
        let affine = nifTITestAffine(axis: SIMD3(1, -1, 2), degrees: 28, zooms: SIMD3(0.7, 0.8, 1.6),
                                     offset: SIMD3(-30, 40, 10), reflect: true)
        let grid = Grid(shape: SIMD3(4, 4, 4), voxelSize: SIMD3(0.7, 0.8, 1.6), affine: affine)
        let path = scratch.path("codes.nii")
        try NIfTI.write(try Volume(grid: grid, voxels: [Float](repeating: 1, count: 64)), to: path)
        var bytes = nifTIBytes(path)
        // Make the sform differ from the qform (shifted 5 mm in x) to see which one is used.
        var shifted = Float(-25).bitPattern
        for i in 0..<4 { bytes[280 + 12 + i] = UInt8(truncatingIfNeeded: shifted); shifted >>= 8 }
        nifTIWriteBytes(bytes, path)
        var header = try NIfTI.readHeader(path)
        #expect(header.bestAffineSource == .sform)
        #expect(abs(try NIfTI.readVolume(path).grid.affine[0, 3] - -25) < 1e-6)

        bytes[254] = 0  // sform_code = 0
        nifTIWriteBytes(bytes, path)
        header = try NIfTI.readHeader(path)
        #expect(header.bestAffineSource == .qform)
        #expect(largestEntryDifference(try NIfTI.readVolume(path).grid.affine, affine) < 1e-5)

        bytes[252] = 0  // qform_code = 0
        nifTIWriteBytes(bytes, path)
        header = try NIfTI.readHeader(path)
        #expect(header.bestAffineSource == .pixdim)
        let expected = Affine.scaling(SIMD3(0.7, 0.8, 1.6))
        #expect(largestEntryDifference(try NIfTI.readVolume(path).grid.affine, expected) < 1e-6)
    }

    /// Quaternion → matrix against hand-computed rotations (nifti1.h conventions).
    @Test func quaternionConventionMatchesTheStandard() {
        var header = NIfTIHeader()
        header.pixdim = [1, 2, 3, 4, 1, 1, 1, 1]
        // 90° about z: (a, b, c, d) = (cos 45°, 0, 0, sin 45°) maps i to +y and j to −x.
        header.quaternion = SIMD3(0, 0, 0.5.squareRoot())
        header.quaternionOffset = SIMD3(10, 20, 30)
        let expected = Affine(rowMajor: [0, -3, 0, 10, 2, 0, 0, 20, 0, 0, 4, 30, 0, 0, 0, 1])
        #expect(largestEntryDifference(header.qformAffine, expected) < 1e-12)
        // qfac = −1 (pixdim[0] < 0) flips the third column.
        header.pixdim[0] = -1
        let flipped = Affine(rowMajor: [0, -3, 0, 10, 2, 0, 0, 20, 0, 0, -4, 30, 0, 0, 0, 1])
        #expect(largestEntryDifference(header.qformAffine, flipped) < 1e-12)
        // pixdim[0] = 0 is treated as qfac = +1, as the standard says.
        header.pixdim[0] = 0
        #expect(largestEntryDifference(header.qformAffine, expected) < 1e-12)
        // 180° about x: (0, 1, 0, 0) → diag(1, −1, −1).
        header.quaternion = SIMD3(1, 0, 0)
        header.pixdim = [1, 1, 1, 1, 1, 1, 1, 1]
        header.quaternionOffset = .zero
        #expect(largestEntryDifference(header.qformAffine, Affine(rowMajor: [1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1])) < 1e-12)
    }

    /// A sheared affine survives exactly in the sform; the qform holds the nearest rotation.
    @Test func shearedAffinesKeepTheSformExactly() throws {
        let scratch = NIfTIScratch()
        let sheared = Affine(rowMajor: [1, 0.2, 0, -5, 0, 1, 0.1, 3, 0, 0, 2, 7, 0, 0, 0, 1])
        let grid = Grid(shape: SIMD3(3, 3, 3), voxelSize: SIMD3(1, 1, 2), affine: sheared)
        let path = scratch.path("shear.nii")
        try NIfTI.write(try Volume(grid: grid, voxels: [Float](repeating: 0, count: 27)), to: path, datatype: .float32,
                        version: .nifti2)
        let header = try NIfTI.readHeader(path)
        #expect(largestEntryDifference(header.sformAffine, sheared) < 1e-12)
        let q = header.qformAffine
        // Columns of the qform rotation are orthonormal (to 1e-9 after dividing out pixdim).
        for c1 in 0..<3 {
            for c2 in 0..<3 {
                let dot = (0..<3).map { q[$0, c1] / header.pixdim[c1 + 1] * q[$0, c2] / header.pixdim[c2 + 1] }
                    .reduce(0, +)
                #expect(abs(dot - (c1 == c2 ? 1 : 0)) < 1e-9)
            }
        }
    }
}
