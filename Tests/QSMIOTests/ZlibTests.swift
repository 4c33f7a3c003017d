import QSMIO
import Testing

@Suite struct ZlibTests {
    /// The CRC-32 "check" value of the ISO-HDLC/PNG CRC for "123456789" (Greg Cook's CRC catalogue,
    /// CRC-32/ISO-HDLC) and the CRC of the PNG `IEND` chunk type, fixed by the PNG specification.
    @Test func crc32MatchesPublishedCheckValues() {
        #expect(Zlib.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(Zlib.crc32([]) == 0)
        #expect(Zlib.crc32(Array("IEND".utf8)) == 0xAE42_6082)
    }

    /// A stream written by Python's `zlib.compress(b"hello qsmbench", 6)` (zlib 1.x) decodes.
    @Test func decompressesAStreamFromAnotherZlibUser() throws {
        let hex = "789ccb48cdc9c957282cce4d4acd4bce0000293a0586"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        #expect(try Zlib.decompress(bytes, name: "python") == Array("hello qsmbench".utf8))
    }

    @Test func compressThenDecompressIsTheIdentity() throws {
        for count in [0, 1, 5000, 300_000] {
            let data = GzipTests.pseudoRandomBytes(count, seed: UInt64(count) + 11)
            let compressed = try Zlib.compress(data)
            // RFC 1950 header: CMF 0x78 = deflate with a 32 KiB window; (CMF·256 + FLG) % 31 == 0.
            #expect(compressed[0] == 0x78)
            #expect((Int(compressed[0]) * 256 + Int(compressed[1])) % 31 == 0)
            #expect(try Zlib.decompress(compressed, name: "memory") == data)
        }
    }

    @Test func badStreamsAreReportedByName() throws {
        let good = try Zlib.compress(Array(repeating: 7, count: 1000))
        #expect(throws: QSMError.invalidFile("idat", "6 bytes of trailing data after the zlib stream")) {
            try Zlib.decompress(good + [1, 2, 3, 4, 5, 6], name: "idat")
        }
        #expect(throws: QSMError.invalidFile("idat", "zlib data ends early (truncated file)")) {
            try Zlib.decompress(Array(good.dropLast(3)), name: "idat")
        }
        var corrupt = good
        corrupt[0] = 0x12  // not deflate
        #expect { try Zlib.decompress(corrupt, name: "idat") } throws: { error in
            (error as? QSMError).map { if case .invalidFile("idat", _) = $0 { true } else { false } } ?? false
        }
        #expect(throws: QSMError.invalidFile("idat", "empty zlib data")) { try Zlib.decompress([], name: "idat") }
    }
}
