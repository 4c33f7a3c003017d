import Foundation
import QSMIO
import Testing

@Suite struct NIfTICommandTests {
    /// 4×3×2 float32 values 0…23 on an oblique grid with 0.5×0.75×2 mm voxels.
    static func writeSample(_ path: String) throws -> Affine {
        // Rotation by 30° about x, scaled per column, with a translation.
        let (c, s) = (3.0.squareRoot() / 2, 0.5)
        let affine = Affine(rowMajor: [0.5, 0, 0, -12, 0, 0.75 * c, -2 * s, 7.5, 0, 0.75 * s, 2 * c, 3, 0, 0, 0, 1])
        let grid = Grid(shape: SIMD3(4, 3, 2), voxelSize: SIMD3(0.5, 0.75, 2), affine: affine)
        try NIfTI.write(try Volume(grid: grid, voxels: (0..<24).map { Float($0) }), to: path)
        return affine
    }

    @Test func infoPrintsJSONWithTheContractKeys() throws {
        let scratch = CommandScratch()
        let path = scratch.path("sample.nii.gz")
        let affine = try Self.writeSample(path)
        let result = try runQSMBench(["info", path, "--json"])
        #expect(result.status == 0)
        #expect(result.standardError.isEmpty)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(object["shape"] as? [Int] == [4, 3, 2])
        #expect(object["voxel_size"] as? [Double] == [0.5, 0.75, 2])
        #expect(object["datatype"] as? String == "float32")
        // Values 0…23: min 0, max 23, mean 11.5.
        #expect(object["min"] as? Double == 0 && object["max"] as? Double == 23 && object["mean"] as? Double == 11.5)
        let rows = try #require(object["affine"] as? [[Double]])
        #expect(rows.count == 4)
        // The sform is stored as float32: entries ≤ 12 in magnitude round by < 1e-6.
        for r in 0..<4 { for c in 0..<4 { #expect(abs(rows[r][c] - affine[r, c]) < 1e-6) } }
    }

    @Test func infoPrintsReadableText() throws {
        let scratch = CommandScratch()
        let path = scratch.path("sample.nii")
        _ = try Self.writeSample(path)
        let result = try runQSMBench(["info", path])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("shape: 4×3×2"))
        #expect(result.standardOutput.contains("datatype: float32"))
        #expect(result.standardOutput.contains("min 0.0, max 23.0, mean 11.5"))
    }

    @Test func convertChangesCompressionAndKeepsTheHeader() throws {
        let scratch = CommandScratch()
        let grid = Grid(shape: SIMD3(5, 4, 3), voxelSize: SIMD3(1, 1, 2))
        let stored = (0..<grid.count).map { Double($0 * 97 % 2000 - 1000) }
        let slope = 0.125, intercept = 3.0  // exact in float32, so values are exact
        let values = stored.map { $0 * slope + intercept }
        let original = scratch.path("phase.nii")
        try NIfTI.write(try Volume(grid: grid, voxels: values), to: original, datatype: .int16,
                        slope: slope, intercept: intercept)
        let compressed = scratch.path("phase.nii.gz")
        let back = scratch.path("phase-again.nii")
        #expect(try runQSMBench(["convert", original, compressed]).status == 0)
        #expect(try runQSMBench(["convert", compressed, back]).status == 0)
        let gz = try NIfTI.read(compressed), plain = try NIfTI.read(back)
        #expect(FileManager.default.contents(atPath: compressed)?.prefix(2) == Data([0x1f, 0x8b]))
        for image in [gz, plain] {
            #expect(image.header.datatype == .int16)
            #expect(image.header.slope == slope && image.header.intercept == intercept)
            #expect(image.values.voxels == values)
        }
        // Uncompressed → compressed → uncompressed reproduces the file byte for byte.
        #expect(FileManager.default.contents(atPath: back) == FileManager.default.contents(atPath: original))
    }

    /// Each broken file: exit status 2, one line `error: <file>: <problem>` on stderr, no output.
    @Test func brokenFilesFailWithOneLineAndExitTwo() throws {
        let scratch = CommandScratch()
        let valid = scratch.path("valid.nii")
        _ = try Self.writeSample(valid)
        let bytes = try #require(FileManager.default.contents(atPath: valid).map { [UInt8]($0) })
        let validGzip = scratch.path("valid.nii.gz")
        _ = try Self.writeSample(validGzip)
        let gzipBytes = try #require(FileManager.default.contents(atPath: validGzip).map { [UInt8]($0) })

        var negative = bytes
        negative[42] = 0xFD; negative[43] = 0xFF  // dim[1] = -3
        var unknownType = bytes
        unknownType[70] = 99; unknownType[71] = 0
        var wrongMagic = bytes
        wrongMagic[344] = UInt8(ascii: "q")
        var corrupt = gzipBytes
        for i in 20..<40 { corrupt[i] ^= 0x5A }
        let cases: [(String, [UInt8], String)] = [
            ("truncated.nii", Array(bytes[0..<100]), "truncated header"),
            ("magic.nii", wrongMagic, "wrong magic"),
            ("short.nii", Array(bytes.dropLast(7)), "data ends early"),
            ("corrupt.nii.gz", corrupt, "gzip"),
            ("negative.nii", negative, "dim[1] is -3"),
            ("type.nii", unknownType, "datatype code 99"),
        ]
        for (name, content, problem) in cases {
            let path = scratch.path(name)
            _ = FileManager.default.createFile(atPath: path, contents: Data(content))
            for arguments in [["info", path], ["info", path, "--json"], ["convert", path, scratch.path("out.nii")]] {
                let result = try runQSMBench(arguments)
                #expect(result.status == 2, "\(arguments)")
                #expect(result.standardOutput.isEmpty)
                let lines = result.standardError.split(separator: "\n")
                #expect(lines.count == 1, "\(arguments): \(result.standardError)")
                #expect(result.standardError.hasPrefix("error: \(path): "), "\(result.standardError)")
                #expect(result.standardError.contains(problem), "\(result.standardError)")
            }
            #expect(!FileManager.default.fileExists(atPath: scratch.path("out.nii")))
        }
        let missing = try runQSMBench(["info", scratch.path("missing.nii")])
        #expect(missing.status == 2 && missing.standardError == "error: \(scratch.path("missing.nii")): no such file\n")
    }

    @Test func unknownExtensionsAreOptionErrors() throws {
        let scratch = CommandScratch()
        let valid = scratch.path("valid.nii")
        _ = try Self.writeSample(valid)
        let result = try runQSMBench(["convert", valid, scratch.path("out.png")])
        #expect(result.status == 2)
        #expect(result.standardError.hasPrefix("error: OUT: "))
        #expect(result.standardError.split(separator: "\n").count == 1)
    }
}
