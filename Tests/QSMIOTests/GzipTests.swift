import Foundation
import QSMIO
import Testing

@Suite struct GzipTests {
    static func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        // Runs of repeated bytes so the data is compressible, like image data.
        return (0..<count).map { i in UInt8(truncatingIfNeeded: (i / 7) % 251 &+ Int(generator.next() % 3)) }
    }

    @Test func compressThenDecompressIsTheIdentity() throws {
        for count in [0, 1, 1000, 3 << 20] {
            let data = Self.pseudoRandomBytes(count, seed: UInt64(count))
            let compressed = try data.withUnsafeBytes { try Gzip.compress($0, name: "memory") }
            #expect(compressed.count >= 18 && compressed[0] == 0x1f && compressed[1] == 0x8b)
            let restored = try compressed.withUnsafeBytes { try Gzip.decompress($0, name: "memory") }
            #expect(restored == data)
        }
    }

    @Test func concatenatedMembersDecodeToTheConcatenation() throws {
        let parts = [Self.pseudoRandomBytes(5000, seed: 1), Self.pseudoRandomBytes(70000, seed: 2), [], [42]]
        var stream: [UInt8] = []
        for part in parts { stream += try part.withUnsafeBytes { try Gzip.compress($0, level: 6, name: "part") } }
        let restored = try stream.withUnsafeBytes { try Gzip.decompress($0, name: "members") }
        #expect(restored == parts.flatMap { $0 })
        // Zero padding after the last member is tolerated (GNU gzip and Python do the same).
        let padded = stream + [UInt8](repeating: 0, count: 100)
        #expect(try padded.withUnsafeBytes { try Gzip.decompress($0, name: "padded") } == restored)
    }

    @Test func limitStopsEarly() throws {
        let data = Self.pseudoRandomBytes(1 << 20, seed: 3)
        let compressed = try data.withUnsafeBytes { try Gzip.compress($0, name: "memory") }
        let prefix = try compressed.withUnsafeBytes { try Gzip.decompress($0, name: "memory", limit: 600) }
        #expect(prefix.count >= 600 && prefix.count < data.count)
        #expect(Array(data[0..<prefix.count]) == prefix)
    }

    @Test func damageIsReportedAsInvalidFile() throws {
        let data = Self.pseudoRandomBytes(100_000, seed: 4)
        let compressed = try data.withUnsafeBytes { try Gzip.compress($0, name: "memory") }
        var crc = compressed
        crc[crc.count - 6] ^= 0xFF  // inside the CRC-32 of the trailer
        #expect(throws: QSMError.self) { try crc.withUnsafeBytes { try Gzip.decompress($0, name: "crc") } }
        let notGzip: [UInt8] = [1, 2, 3, 4]
        #expect(throws: QSMError.invalidFile("x", "not gzip data (no 1f 8b magic number)")) {
            try notGzip.withUnsafeBytes { try Gzip.decompress($0, name: "x") }
        }
    }
}
