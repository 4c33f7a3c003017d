import Foundation
import QSMIO
import Testing

/// What nibabel reports for each fixture (written by scripts/fixtures/make-nifti-fixtures.py).
private struct NibabelReport: Decodable {
    struct Fixture: Decodable {
        let file: String
        let version: Int
        let big_endian: Bool
        let datatype: String
        let dim: [Int]
        let zooms: [Double]
        let qform_code: Int
        let sform_code: Int
        let qform: [[Double]]
        let sform: [[Double]]
        let nibabel_affine: [[Double]]
        let slope: Double
        let intercept: Double
        let values: [Double]
        let imaginary: [Double]?
        let vox_offset: Int
    }
    let generator: String
    let fixtures: [Fixture]

    static func load() throws -> NibabelReport {
        let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
            .appendingPathComponent("nifti/expected.json")
        return try JSONDecoder().decode(NibabelReport.self, from: Data(contentsOf: url))
    }
}

private func affine(_ rows: [[Double]]) -> Affine { Affine(rowMajor: rows.flatMap { $0 }) }

/// Files written by nibabel read with the values, scaling and geometry nibabel reports.
@Suite struct NIfTIFixtureTests {
    static let files = [
        "uint8_sform.nii", "int16_scaled_qform.nii.gz", "int32_nifti2.nii", "float32_big_endian.nii",
        "float64_4d_nifti2.nii.gz", "complex64.nii", "int16_slope_zero.nii", "float32_no_codes.nii",
        "float32_multimember.nii.gz", "float32_extension.nii",
    ]

    @Test func everyFixtureHasANibabelReport() throws {
        let report = try NibabelReport.load()
        #expect(Set(report.fixtures.map(\.file)) == Set(Self.files))
        #expect(report.generator.contains("nibabel"))
    }

    @Test(arguments: files)
    func fixtureMatchesNibabel(file: String) throws {
        let report = try NibabelReport.load()
        let expected = try #require(report.fixtures.first { $0.file == file })
        let directory = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let path = directory.appendingPathComponent("nifti/\(file)").path

        let image = try NIfTI.read(path)
        let header = image.header
        #expect(header.version.rawValue == expected.version)
        #expect(header.isLittleEndian == !expected.big_endian)
        #expect(header.datatype.description == expected.datatype)
        #expect(Array(header.dim[0...header.dim[0]]) == expected.dim)
        #expect(header.qformCode == expected.qform_code && header.sformCode == expected.sform_code)
        #expect(header.voxelOffset == expected.vox_offset)

        // Both sides widen the same float32 (NIfTI-1) or float64 (NIfTI-2) fields to float64; the
        // quaternion-to-matrix formulas differ only by double rounding (≪ 1e-9).
        #expect(largestEntryDifference(header.qformAffine, affine(expected.qform)) < 1e-9)
        #expect(largestEntryDifference(header.sformAffine, affine(expected.sform)) < 1e-12)
        let grid = image.values.grid
        if expected.sform_code > 0 || expected.qform_code > 0 {
            #expect(largestEntryDifference(grid.affine, affine(expected.nibabel_affine)) < 1e-9)
        } else {
            // Both codes 0: the NIfTI-1 standard's method 1, diag(pixdim), where nibabel reports an
            // Analyze-style x-flipped, centred affine (a documented difference, docs/NIFTI.md).
            let zooms = SIMD3(expected.zooms[0], expected.zooms[1], expected.zooms[2])
            #expect(largestEntryDifference(grid.affine, .scaling(zooms)) < 1e-12)
            #expect(expected.nibabel_affine[0][0] == -expected.zooms[0])
        }
        for axis in 0..<3 { #expect(abs(grid.voxelSize[axis] - expected.zooms[axis]) < 1e-6) }
        #expect(image.values.frames == (expected.dim[0] > 3 ? expected.dim[4] : 1))

        // nibabel may apply int16 scaling in float32 (apply_read_scaling), so values agree to
        // float32 rounding: relative 1e-6.
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-6 * max(1, abs(b)) }
        #expect(image.values.voxels.count == expected.values.count)
        #expect(zip(image.values.voxels, expected.values).allSatisfy { close($0, $1) })
        if let imaginary = expected.imaginary {
            let parts = try #require(image.imaginary)
            #expect(zip(parts.voxels, imaginary).allSatisfy { close($0, $1) })
        } else {
            #expect(image.imaginary == nil)
            let floats = try NIfTI.readVolume(path)
            #expect(zip(floats.voxels, expected.values).allSatisfy { close(Double($0), $1) })
            #expect(largestEntryDifference(floats.grid.affine, grid.affine) == 0)
        }

        // Scaling as nibabel applies it (slope 1, intercept 0 when the file has none or slope 0).
        let scaling = header.scaling ?? (1, 0)
        #expect(scaling.slope == expected.slope && scaling.intercept == expected.intercept)
    }
}
