import Foundation
import QSMIO
import Testing

@Suite struct HDF5CommandTests {
    /// NIfTI → HDF5 → NIfTI keeps values, shape, voxel size and the oblique affine.
    @Test func convertRoundTripsThroughHDF5() throws {
        let scratch = CommandScratch()
        let affine = try NIfTICommandTests.writeSample(scratch.path("in.nii.gz"))
        let toHDF5 = try runQSMBench(["convert", scratch.path("in.nii.gz"), scratch.path("v.h5")])
        #expect(toHDF5.status == 0, "\(toHDF5.standardError)")
        let back = try runQSMBench(["convert", scratch.path("v.h5"), scratch.path("out.nii")])
        #expect(back.status == 0, "\(back.standardError)")
        let volume = try NIfTI.readVolume(scratch.path("out.nii"))
        #expect(volume.voxels == (0..<24).map { Float($0) })
        // NIfTI stores the affine in float32: agreement to 1e-5 mm.
        for i in 0..<16 { #expect(abs(volume.grid.affine.entries[i] - affine.entries[i]) < 1e-5) }
    }

    @Test func infoShowsTheTreeAndTheVolume() throws {
        let scratch = CommandScratch()
        _ = try NIfTICommandTests.writeSample(scratch.path("in.nii"))
        _ = try runQSMBench(["convert", scratch.path("in.nii"), scratch.path("v.h5")])
        let text = try runQSMBench(["info", scratch.path("v.h5")])
        #expect(text.status == 0)
        #expect(text.standardOutput.contains("shape: 4×3×2"))
        #expect(text.standardOutput.contains("volume  float32 (2, 3, 4)"))
        #expect(text.standardOutput.contains("values: min 0.0, max 23.0, mean 11.5"))
        let json = try runQSMBench(["info", scratch.path("v.h5"), "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["shape"] as? [Int] == [4, 3, 2])
        #expect(object["mean"] as? Double == 11.5)
    }

    @Test func fileWithoutAVolumeShowsOnlyItsTree() throws {
        let scratch = CommandScratch()
        let file = try HDF5File.create(scratch.path("r.h5"))
        _ = try file.writeDataset("/runs/a/metrics", values: [1.0, 2.0], shape: [2])
        try file.close()
        let result = try runQSMBench(["info", scratch.path("r.h5")])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("metrics  float64 (2)"))
    }

    @Test func corruptHDF5GivesOneLine() throws {
        let scratch = CommandScratch()
        try Data("not hdf5 at all".utf8).write(to: URL(fileURLWithPath: scratch.path("bad.h5")))
        let result = try runQSMBench(["info", scratch.path("bad.h5")])
        #expect(result.status == 2)
        #expect(result.standardError == "error: \(scratch.path("bad.h5")): not an HDF5 file (no HDF5 signature)\n")
        let convert = try runQSMBench(["convert", scratch.path("bad.h5"), scratch.path("out.nii")])
        #expect(convert.status == 2)
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out.nii")))
    }
}
