import QSMIO
import QSMReport

/// A minimal, independent PNG decoder for 8-bit greyscale/RGB non-interlaced files, written from
/// the PNG specification for these tests: it checks the signature, every chunk's CRC, the IHDR
/// fields, inflates the concatenated IDAT data and undoes the five row filters.
struct DecodedPNG {
    var width = 0, height = 0, colorType = 0
    var chunkTypes: [String] = []
    var samples: [UInt8] = []
    var filtersUsed: Set<UInt8> = []

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(_ file: [UInt8]) throws {
        guard file.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw Failure(description: "signature") }
        func bigEndian(_ at: Int) -> Int { file[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        var offset = 8
        var idat: [UInt8] = []
        var bitDepth = 0, interlace = -1
        while offset < file.count {
            let length = bigEndian(offset)
            let type = String(decoding: file[offset + 4..<offset + 8], as: UTF8.self)
            let data = Array(file[offset + 8..<offset + 8 + length])
            let crc = UInt32(bigEndian(offset + 8 + length))
            guard Zlib.crc32(Array(file[offset + 4..<offset + 8 + length])) == crc else { throw Failure(description: "CRC of \(type)") }
            chunkTypes.append(type)
            switch type {
            case "IHDR":
                width = data[0..<4].reduce(0) { $0 << 8 | Int($1) }
                height = data[4..<8].reduce(0) { $0 << 8 | Int($1) }
                bitDepth = Int(data[8]); colorType = Int(data[9]); interlace = Int(data[12])
            case "IDAT": idat += data
            default: break
            }
            offset += 12 + length
        }
        guard bitDepth == 8, interlace == 0, colorType == 0 || colorType == 2 else { throw Failure(description: "IHDR") }
        let channels = colorType == 0 ? 1 : 3
        let stride = width * channels
        let raw = try Zlib.decompress(idat, name: "IDAT")
        guard raw.count == (stride + 1) * height else { throw Failure(description: "IDAT size \(raw.count)") }
        samples = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            filtersUsed.insert(filter)
            for i in 0..<stride {
                let value = raw[y * (stride + 1) + 1 + i]
                let a = i >= channels ? Int(samples[y * stride + i - channels]) : 0
                let b = y > 0 ? Int(samples[(y - 1) * stride + i]) : 0
                let c = i >= channels && y > 0 ? Int(samples[(y - 1) * stride + i - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Failure(description: "filter \(filter)")
                }
                samples[y * stride + i] = value &+ UInt8(predictor)
            }
        }
    }
}
