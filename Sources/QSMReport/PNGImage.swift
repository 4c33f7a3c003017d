import QSMIO

/// An 8-bit greyscale or RGB raster, row 0 at the top, that encodes itself as a PNG file.
///
/// Encoding follows the PNG specification (ISO/IEC 15948:2004, W3C PNG 2nd ed.): signature,
/// `IHDR`, one `IDAT` zlib stream, `IEND`, each chunk closed by its CRC-32. Rows are filtered
/// with the spec's recommended heuristic (per row, the filter with the least sum of absolute
/// signed bytes), which keeps montages several times smaller than unfiltered rows.
public struct PNGImage: Sendable, Equatable {
    /// How many 8-bit samples make one pixel.
    public enum ColorType: Sendable, Equatable {
        /// One grey sample per pixel (PNG colour type 0).
        case greyscale
        /// Red, green and blue samples per pixel (PNG colour type 2).
        case rgb

        /// Samples per pixel.
        public var channels: Int { self == .greyscale ? 1 : 3 }
        /// The PNG `IHDR` colour-type code.
        var code: UInt8 { self == .greyscale ? 0 : 2 }
    }

    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// Greyscale or RGB.
    public let colorType: ColorType
    /// Samples, row by row from the top, left to right, channels interleaved.
    public private(set) var samples: [UInt8]

    /// An image filled with `color` (its red channel for greyscale).
    public init(width: Int, height: Int, colorType: ColorType = .rgb, filling color: RGBColor = .white) throws(QSMError) {
        try Self.checkSize(width, height)
        self.width = width
        self.height = height
        self.colorType = colorType
        if colorType == .greyscale {
            samples = [UInt8](repeating: color.red, count: width * height)
        } else {
            samples = [UInt8](repeating: 0, count: width * height * 3)
            for i in stride(from: 0, to: samples.count, by: 3) {
                samples[i] = color.red
                samples[i + 1] = color.green
                samples[i + 2] = color.blue
            }
        }
    }

    /// An image wrapping `samples` (width × height × channels of them).
    public init(width: Int, height: Int, colorType: ColorType, samples: [UInt8]) throws(QSMError) {
        try Self.checkSize(width, height)
        guard samples.count == width * height * colorType.channels else {
            throw .mismatch("PNG image", "\(samples.count) samples do not fill \(width)×\(height)×\(colorType.channels)")
        }
        self.width = width
        self.height = height
        self.colorType = colorType
        self.samples = samples
    }

    private static func checkSize(_ width: Int, _ height: Int) throws(QSMError) {
        // PNG stores sizes as 31-bit integers; the bound on the product keeps memory sane.
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max),
              width.multipliedReportingOverflow(by: height).partialValue <= 1 << 28 else {
            throw .invalidParameter("PNG image", "size \(width)×\(height) is not between 1×1 and 2^28 pixels")
        }
    }

    /// The pixel at column `x`, row `y` (grey images return a grey colour).
    public subscript(x: Int, y: Int) -> RGBColor {
        get {
            let i = (y * width + x) * colorType.channels
            return colorType == .greyscale ? RGBColor(grey: samples[i]) : RGBColor(samples[i], samples[i + 1], samples[i + 2])
        }
        set {
            let i = (y * width + x) * colorType.channels
            if colorType == .greyscale {
                samples[i] = newValue.red
            } else {
                samples[i] = newValue.red
                samples[i + 1] = newValue.green
                samples[i + 2] = newValue.blue
            }
        }
    }

    /// The complete PNG file.
    public func encoded() throws(QSMError) -> [UInt8] {
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        Self.appendBigEndian(UInt32(width), to: &header)
        Self.appendBigEndian(UInt32(height), to: &header)
        // Bit depth 8, colour type, deflate compression, adaptive filtering, no interlace.
        header += [8, colorType.code, 0, 0, 0]
        Self.appendChunk("IHDR", header, to: &file)
        Self.appendChunk("IDAT", try Zlib.compress(filteredRows()), to: &file)
        Self.appendChunk("IEND", [], to: &file)
        return file
    }

    /// Writes the PNG file atomically to `path`.
    public func write(to path: String) throws(QSMError) {
        try AtomicFile.write(try encoded(), to: path)
    }

    // MARK: - Encoding internals

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// Length, type, data, then CRC-32 over type and data (the length is not covered).
    private static func appendChunk(_ type: String, _ data: [UInt8], to file: inout [UInt8]) {
        appendBigEndian(UInt32(data.count), to: &file)
        let typed = Array(type.utf8) + data
        file += typed
        appendBigEndian(Zlib.crc32(typed), to: &file)
    }

    /// Each row prefixed by its filter byte (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth).
    private func filteredRows() -> [UInt8] {
        let stride = width * colorType.channels
        let bpp = colorType.channels  // bytes per complete pixel: the "left" neighbour distance
        var out = [UInt8]()
        out.reserveCapacity((stride + 1) * height)
        var candidate = [UInt8](repeating: 0, count: stride)
        var best = [UInt8](repeating: 0, count: stride)
        samples.withUnsafeBufferPointer { s in
            for y in 0..<height {
                let row = UnsafeBufferPointer(rebasing: s[y * stride..<(y + 1) * stride])
                // The row above the first is defined to be all zeros.
                let aboveStart = (y - 1) * stride
                var bestFilter: UInt8 = 0
                var bestCost = Int.max
                for filter: UInt8 in 0...4 {
                    var cost = 0
                    for i in 0..<stride {
                        let a = i >= bpp ? row[i - bpp] : 0
                        let b = y > 0 ? s[aboveStart + i] : 0
                        let c = y > 0 && i >= bpp ? s[aboveStart + i - bpp] : 0
                        let predictor: UInt8
                        switch filter {
                        case 0: predictor = 0
                        case 1: predictor = a
                        case 2: predictor = b
                        case 3: predictor = UInt8((Int(a) + Int(b)) / 2)
                        default: predictor = Self.paeth(a, b, c)
                        }
                        let value = row[i] &- predictor
                        candidate[i] = value
                        cost += Int(Int8(bitPattern: value).magnitude)
                    }
                    if cost < bestCost {
                        bestCost = cost
                        bestFilter = filter
                        swap(&best, &candidate)
                    }
                }
                out.append(bestFilter)
                out += best
            }
        }
        return out
    }

    /// The Paeth predictor: whichever of left, above, upper-left is closest to left + above − upper-left.
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }
}
