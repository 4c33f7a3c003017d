import Foundation
import QSMReport
import Testing

@Suite struct PNGImageTests {
    /// Samples mixing smooth gradients (favouring Sub/Up/Paeth) and noise (favouring None).
    static func testSamples(width: Int, height: Int, channels: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var samples: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let noisy = y % 5 == 3
                    samples.append(noisy ? UInt8.random(in: 0...255, using: &generator)
                                         : UInt8(truncatingIfNeeded: x * 3 + y * 2 + c * 60))
                }
            }
        }
        return samples
    }

    @Test(arguments: [PNGImage.ColorType.greyscale, .rgb])
    func independentDecoderRecoversEverySample(_ colorType: PNGImage.ColorType) throws {
        let width = 37, height = 23
        let samples = Self.testSamples(width: width, height: height, channels: colorType.channels, seed: 5)
        let image = try PNGImage(width: width, height: height, colorType: colorType, samples: samples)
        let decoded = try DecodedPNG(try image.encoded())
        #expect(decoded.chunkTypes == ["IHDR", "IDAT", "IEND"])
        #expect(decoded.width == width && decoded.height == height)
        #expect(decoded.colorType == (colorType == .greyscale ? 0 : 2))
        #expect(decoded.samples == samples)
        // The adaptive heuristic must pick more than one filter on mixed content, or the
        // decoder's unfiltering of the other types would go untested.
        #expect(decoded.filtersUsed.count >= 2)
    }

    @Test func pixelAccessAndFillUseTopLeftOrigin() throws {
        var image = try PNGImage(width: 4, height: 3, colorType: .rgb, filling: RGBColor(1, 2, 3))
        image.fillRectangle(x: 2, y: 1, width: 10, height: 10, color: RGBColor(200, 100, 50))  // clipped
        image[0, 2] = .black
        let decoded = try DecodedPNG(try image.encoded())
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(decoded.samples[(y * 4 + x) * 3..<(y * 4 + x) * 3 + 3]) }
        #expect(pixel(0, 0) == [1, 2, 3])
        #expect(pixel(2, 1) == [200, 100, 50] && pixel(3, 2) == [200, 100, 50])
        #expect(pixel(1, 1) == [1, 2, 3])
        #expect(pixel(0, 2) == [0, 0, 0])
    }

    @Test func wrongSampleCountsAndSizesAreRejected() {
        #expect(throws: QSMError.mismatch("PNG image", "5 samples do not fill 2×2×1")) {
            try PNGImage(width: 2, height: 2, colorType: .greyscale, samples: [0, 0, 0, 0, 0])
        }
        #expect(throws: QSMError.invalidParameter("PNG image", "size 0×3 is not between 1×1 and 2^28 pixels")) {
            try PNGImage(width: 0, height: 3)
        }
    }

    @Test func writeProducesTheEncodedFile() throws {
        let image = try PNGImage(width: 3, height: 2, colorType: .greyscale, samples: [0, 50, 100, 150, 200, 250])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qsmreport-\(UUID()).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try image.write(to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes == (try image.encoded()))
    }
}

/// Runs `python3 -c script arguments…`; nil when Python cannot be started.
func runPython(_ script: String, _ arguments: [String] = []) -> (status: Int32, output: String)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

private let pillowAvailable: Bool = runPython("import PIL")?.status == 0

/// Optional peer check: Pillow (a full PNG decoder, with zlib CRC and Adler checks) reads our files.
@Suite(.enabled(if: pillowAvailable, "Pillow is not installed (pip install pillow) — PNG cross-check skipped"))
struct PNGPillowCrossCheckTests {
    @Test(arguments: [PNGImage.ColorType.greyscale, .rgb])
    func pillowDecodesTheSameSamples(_ colorType: PNGImage.ColorType) throws {
        let width = 19, height = 11
        let samples = PNGImageTests.testSamples(width: width, height: height, channels: colorType.channels, seed: 9)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qsmreport-\(UUID()).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PNGImage(width: width, height: height, colorType: colorType, samples: samples).write(to: path)
        let script = """
        import sys
        from PIL import Image
        im = Image.open(sys.argv[1]); im.load()
        print(im.mode, im.size[0], im.size[1])
        print(" ".join(str(v) for v in im.tobytes()))
        """
        let result = try #require(runPython(script, [path]))
        #expect(result.status == 0)
        let lines = result.output.split(separator: "\n")
        #expect(lines.first == (colorType == .greyscale ? "L 19 11" : "RGB 19 11"))
        #expect(lines.dropFirst().first?.split(separator: " ").compactMap { UInt8($0) } == samples)
    }
}
