import Foundation
import QSMIO
import Testing

/// Broken files give a typed `QSMError.invalidFile` naming the file and the problem; never a crash.
@Suite struct NIfTIBadInputTests {
    /// A valid 3×3×3 float32 file's bytes (NIfTI-1 or -2, uncompressed).
    static func validBytes(_ scratch: NIfTIScratch, version: NIfTIVersion = .nifti1) throws -> [UInt8] {
        let grid = Grid(shape: SIMD3(3, 3, 3))
        let volume = try Volume(grid: grid, voxels: (0..<27).map { Double($0) })
        let path = scratch.path("valid-\(version.rawValue).nii")
        try NIfTI.write(volume, to: path, datatype: .float32, version: version)
        return nifTIBytes(path)
    }

    /// Expects every reader to fail on `bytes` with `.invalidFile(path, …)` mentioning `problem`.
    static func expectRejected(_ bytes: [UInt8], _ problem: String, name: String, _ scratch: NIfTIScratch,
                               headerToo: Bool = true) {
        let path = scratch.path(name)
        nifTIWriteBytes(bytes, path)
        let readers = headerToo ? ["read", "readVolume", "readHeader"] : ["read", "readVolume"]
        for reader in readers {
            do throws(QSMError) {
                switch reader {
                case "read": _ = try NIfTI.read(path)
                case "readVolume": _ = try NIfTI.readVolume(path)
                default: _ = try NIfTI.readHeader(path)
                }
                Issue.record("\(name): \(reader) accepted it, expected '\(problem)'")
            } catch {
                guard case let .invalidFile(subject, message) = error else {
                    Issue.record("\(name): wrong error kind \(error)")
                    continue
                }
                #expect(subject == path)
                #expect(message.contains(problem), "\(name): '\(message)' should mention '\(problem)'")
                #expect(!error.description.contains("\n"))
            }
        }
    }

    static func setInt16(_ bytes: inout [UInt8], _ offset: Int, _ value: Int16) {
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    static func setInt64(_ bytes: inout [UInt8], _ offset: Int, _ value: Int64) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * Int64(i))) }
    }

    @Test func truncatedHeader() throws {
        let scratch = NIfTIScratch()
        let bytes = try Self.validBytes(scratch)
        Self.expectRejected(Array(bytes[0..<200]), "truncated header", name: "short.nii", scratch)
        Self.expectRejected([], "truncated header", name: "empty.nii", scratch)
        let two = try Self.validBytes(scratch, version: .nifti2)
        Self.expectRejected(Array(two[0..<400]), "truncated header", name: "short2.nii", scratch)
    }

    @Test func wrongMagicAndSize() throws {
        let scratch = NIfTIScratch()
        var bytes = try Self.validBytes(scratch)
        let original = bytes
        bytes[344] = UInt8(ascii: "x")
        Self.expectRejected(bytes, "wrong magic", name: "magic.nii", scratch)
        bytes = original
        bytes[345] = UInt8(ascii: "i")  // "ni1": a .hdr/.img pair header
        Self.expectRejected(bytes, "two-file", name: "pair.nii", scratch)
        bytes = original
        bytes[0] = 0x7f
        Self.expectRejected(bytes, "not a NIfTI file", name: "size.nii", scratch)
        var two = try Self.validBytes(scratch, version: .nifti2)
        two[5] = UInt8(ascii: "?")
        Self.expectRejected(two, "wrong magic", name: "magic2.nii", scratch)
        Self.expectRejected(Array("just some text, definitely not an image".utf8), "not a NIfTI file",
                            name: "text.nii", scratch)
    }

    @Test func dataShorterThanTheHeaderSays() throws {
        let scratch = NIfTIScratch()
        let bytes = try Self.validBytes(scratch)
        // Header-only reads succeed; data reads must fail.
        Self.expectRejected(Array(bytes.dropLast(10)), "data ends early", name: "cut.nii", scratch, headerToo: false)
        Self.expectRejected(Array(bytes[0..<352]), "data ends early", name: "nodata.nii", scratch, headerToo: false)
        var offset = bytes
        // vox_offset (float32 at 108) beyond the end of the file.
        let beyond = Float(100_000).bitPattern
        for i in 0..<4 { offset[108 + i] = UInt8(truncatingIfNeeded: beyond >> (8 * UInt32(i))) }
        Self.expectRejected(offset, "data ends early", name: "offset.nii", scratch, headerToo: false)
    }

    @Test func badDimensionsAndTypes() throws {
        let scratch = NIfTIScratch()
        let original = try Self.validBytes(scratch)
        var bytes = original
        Self.setInt16(&bytes, 42, -3)  // dim[1]
        Self.expectRejected(bytes, "dim[1] is -3", name: "negative.nii", scratch)
        bytes = original
        Self.setInt16(&bytes, 44, 0)  // dim[2]
        Self.expectRejected(bytes, "dim[2] is 0", name: "zero.nii", scratch)
        bytes = original
        Self.setInt16(&bytes, 40, 9)  // dim[0]
        Self.expectRejected(bytes, "dim[0] is 9", name: "rank.nii", scratch)
        bytes = original
        Self.setInt16(&bytes, 70, 99)  // datatype
        Self.expectRejected(bytes, "unknown or unsupported datatype code 99", name: "type.nii", scratch)
        bytes = original
        Self.setInt16(&bytes, 70, 128)  // RGB24: a real code qsmbench does not read
        Self.expectRejected(bytes, "datatype code 128", name: "rgb.nii", scratch)
        bytes = original
        for i in 0..<4 { bytes[80 + i] = 0 }  // pixdim[1] = 0
        Self.expectRejected(bytes, "pixdim[1]", name: "pixdim.nii", scratch)
        bytes = original
        for i in 0..<4 { bytes[108 + i] = 0 }  // vox_offset = 0
        Self.expectRejected(bytes, "vox_offset", name: "voxoffset.nii", scratch)

        bytes = original
        let two = Float(2).bitPattern, nan = Float.nan.bitPattern
        for i in 0..<4 {  // scl_slope = 2 with scl_inter = NaN: nibabel refuses this too
            bytes[112 + i] = UInt8(truncatingIfNeeded: two >> (8 * UInt32(i)))
            bytes[116 + i] = UInt8(truncatingIfNeeded: nan >> (8 * UInt32(i)))
        }
        Self.expectRejected(bytes, "scl_inter", name: "intercept.nii", scratch)

        let version2 = try Self.validBytes(scratch, version: .nifti2)
        var big = version2
        Self.setInt64(&big, 24, -7)  // dim[1]
        Self.expectRejected(big, "dim[1] is -7", name: "negative2.nii", scratch)
        big = version2
        for axis in 1...3 { Self.setInt64(&big, 16 + 8 * axis, 1 << 40) }
        Self.expectRejected(big, "overflow", name: "huge2.nii", scratch)
    }

    @Test func bigEndianHeadersAreValidatedToo() throws {
        let scratch = NIfTIScratch()
        var bytes = try Self.validBytes(scratch)
        // Byte-swap the fields the validator reads, making a big-endian header with dim[3] = -1.
        bytes[0...3] = [0, 0, 0x01, 0x5c]
        for offset in [40, 42, 44, 46, 48, 50, 52, 54, 70] {  // dim[0…7], datatype
            let value: Int16 = offset == 46 ? -1 : Int16(bytes[offset]) | Int16(bytes[offset + 1]) << 8
            bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
            bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
        }
        Self.expectRejected(bytes, "dim[3] is -1", name: "bigendian.nii", scratch)
    }

    @Test func corruptAndTruncatedGzip() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(8, 8, 8))
        let volume = try Volume(grid: grid, voxels: (0..<grid.count).map { Float($0 % 17) })
        try NIfTI.write(volume, to: scratch.path("good.nii.gz"))
        let compressed = nifTIBytes(scratch.path("good.nii.gz"))
        var corrupt = compressed
        for i in (compressed.count / 2)..<(compressed.count / 2 + 8) { corrupt[i] ^= 0xA5 }
        Self.expectRejected(corrupt, "gzip", name: "corrupt.nii.gz", scratch, headerToo: false)
        Self.expectRejected(Array(compressed.dropLast(compressed.count / 3)), "truncated",
                            name: "cut.nii.gz", scratch, headerToo: false)
        Self.expectRejected(Array(compressed[0..<5]), "gzip", name: "stub.nii.gz", scratch)
        var garbage = compressed
        garbage += Array("trailing garbage".utf8)
        Self.expectRejected(garbage, "trailing data", name: "garbage.nii.gz", scratch, headerToo: false)
    }

    @Test func missingFilesAndDirectories() throws {
        let scratch = NIfTIScratch()
        let missing = scratch.path("nowhere.nii.gz")
        #expect(throws: QSMError.invalidFile(missing, "no such file")) { try NIfTI.readVolume(missing) }
        #expect(throws: QSMError.invalidFile(scratch.directory, "is a directory, not a NIfTI file")) {
            try NIfTI.readHeader(scratch.directory)
        }
    }
}
