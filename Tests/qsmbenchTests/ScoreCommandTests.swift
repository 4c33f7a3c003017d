import Foundation
import QSMIO
import Testing

@Suite struct ScoreCommandTests {
    let grid = Grid(shape: SIMD3(16, 14, 12))

    /// Truth: a smooth pattern in an ellipsoid mask with six DGM cubes and a tissue label; written
    /// as float32 NIfTI with an identity-scaled affine.
    func writeInputs(_ scratch: CommandScratch, recon transform: (Float) -> Float = { $0 }) throws {
        var truth = Volume<Float>(grid: grid, repeating: 0), mask = truth, labels = truth
        for z in 0..<12 { for y in 0..<14 { for x in 0..<16 {
            let a = (Double(x) - 7.5) / 7, b = (Double(y) - 6.5) / 6, c = (Double(z) - 5.5) / 5
            guard a * a + b * b + c * c <= 1 else { continue }
            mask[x, y, z] = 1
            labels[x, y, z] = 8
            truth[x, y, z] = Float(0.05 * Double.sin(Double(x) / 2) + 0.01 * Double(z))
        } } }
        for k in 0..<6 { for z in 5..<7 { labels[4 + k, 6, z] = Float(k + 1) } }
        try NIfTI.write(truth, to: scratch.path("truth.nii"))
        try NIfTI.write(truth.map(transform), to: scratch.path("recon.nii.gz"))
        try NIfTI.write(mask, to: scratch.path("mask.nii"))
        try NIfTI.write(labels, to: scratch.path("seg.nii"))
    }

    func arguments(_ scratch: CommandScratch, recon: String = "recon.nii.gz", mask: String = "mask.nii") -> [String] {
        ["score", "--recon", scratch.path(recon), "--truth", scratch.path("truth.nii"), "--mask", scratch.path(mask)]
    }

    /// r = ½·t + 0.01 inside the mask: demeaned NRMSE is exactly 50 %, the detrended one and the
    /// correlation are perfect (float32 halving and the offset only add ~1e-7 relative rounding).
    @Test func writesJSONAndMarkdownWithTheContractKeys() throws {
        let scratch = CommandScratch()
        try writeInputs(scratch) { $0 == 0 ? 0 : $0 / 2 + 0.01 }
        let result = try runQSMBench(arguments(scratch) + ["--seg", scratch.path("seg.nii"), "--convention", "qsm-ci",
                                                           "--json", scratch.path("scores.json"),
                                                           "--markdown", scratch.path("scores.md")])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("| nrmse_demeaned |"))
        let data = try #require(FileManager.default.contents(atPath: scratch.path("scores.json")))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["rmse", "nrmse", "nrmse_demeaned", "nrmse_detrended", "hfen", "ssim", "xsim", "cc", "nmi",
                    "regions", "convention", "version", "definitions", "dgm_slope", "labels"] {
            #expect(object.keys.contains(key), "missing \(key)")
        }
        #expect(object["convention"] as? String == "qsm-ci")
        #expect(abs(try #require(object["nrmse_demeaned"] as? Double) - 50) < 1e-4)
        #expect(abs(try #require(object["nrmse_detrended"] as? Double)) < 1e-4)
        #expect(abs(try #require(object["cc"] as? Double) - 1) < 1e-6)
        #expect(abs(try #require(object["dgm_slope"] as? Double) - 0.5) < 1e-6)
        let regions = try #require(object["regions"] as? [String: Any])
        #expect(Set(regions.keys) == ["whole_brain", "tissue", "blood", "dgm"])
        let markdown = try #require(FileManager.default.contents(atPath: scratch.path("scores.md")))
        #expect(String(decoding: markdown, as: UTF8.self) == result.standardOutput)
    }

    /// Each kind of unusable input: exit 2, exactly one `error: <file>: <problem>` line, no output file.
    @Test func badInputsFailWithOneLine() throws {
        let scratch = CommandScratch()
        try writeInputs(scratch)
        try NIfTI.write(Volume<Float>(grid: Grid(shape: SIMD3(16, 14, 11)), repeating: 0), to: scratch.path("short.nii"))
        var moved = Grid(shape: SIMD3(16, 14, 12))
        moved.affine[0, 3] = 4
        try NIfTI.write(Volume<Float>(grid: moved, repeating: 1), to: scratch.path("moved.nii"))
        try NIfTI.write(Volume<Float>(grid: grid, repeating: 0), to: scratch.path("empty.nii"))
        var holed = try NIfTI.readVolume(scratch.path("truth.nii"))
        holed[8, 7, 6] = .nan
        try NIfTI.write(holed, to: scratch.path("nan.nii"))

        let cases: [([String], String)] = [
            (arguments(scratch, recon: "short.nii"),
             "error: \(scratch.path("short.nii")): shape 16×14×11 differs from \(scratch.path("truth.nii")) (16×14×12)"),
            (arguments(scratch, mask: "moved.nii"),
             "error: \(scratch.path("moved.nii")): affine differs from \(scratch.path("truth.nii")) (largest entry difference 4.0)"),
            (arguments(scratch, mask: "empty.nii"), "error: \(scratch.path("empty.nii")): no voxel is inside the mask"),
            (arguments(scratch, recon: "nan.nii"),
             "error: \(scratch.path("nan.nii")): non-finite value nan at voxel (8, 7, 6) inside the mask"),
        ]
        for (args, expected) in cases {
            let result = try runQSMBench(args + ["--json", scratch.path("out.json")])
            #expect(result.status == 2, "\(args)")
            #expect(result.standardError == expected + "\n")
            #expect(!FileManager.default.fileExists(atPath: scratch.path("out.json")))
        }
        // Missing file and unknown convention: one error line, exit 2 (wording from the reader/parser).
        for args in [arguments(scratch, recon: "absent.nii"), arguments(scratch) + ["--convention", "fancy"]] {
            let result = try runQSMBench(args)
            #expect(result.status == 2)
            #expect(result.standardError.hasPrefix("error: ") && result.standardError.filter { $0 == "\n" }.count == 1,
                    "\(result.standardError)")
        }
    }
}
