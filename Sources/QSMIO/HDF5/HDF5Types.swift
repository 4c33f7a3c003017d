/// The value of an HDF5 attribute: a number, a string, or a 1-D array of numbers or strings.
///
/// Floating-point attributes of any precision read back as `.double`/`.doubles`, integers of any
/// width as `.integer`/`.integers` (64-bit); a scalar dataspace gives the scalar case, any other
/// dataspace the array case (flattened in C order).
public enum HDF5Value: Equatable, Sendable, CustomStringConvertible {
    /// A scalar written as float64.
    case double(Double)
    /// A scalar written as int64.
    case integer(Int)
    /// A scalar variable-length UTF-8 string.
    case string(String)
    /// A 1-D float64 array.
    case doubles([Double])
    /// A 1-D int64 array.
    case integers([Int])
    /// A 1-D array of variable-length UTF-8 strings.
    case strings([String])

    /// The value as written by `describeTree` (strings quoted, arrays in brackets).
    public var description: String {
        switch self {
        case let .double(value): return "\(value)"
        case let .integer(value): return "\(value)"
        case let .string(value): return quoted(value)
        case let .doubles(values): return bracketed(values.map { "\($0)" })
        case let .integers(values): return bracketed(values.map { "\($0)" })
        case let .strings(values): return bracketed(values.map(quoted))
        }
    }

    /// The value as a Double, if it is a numeric scalar.
    public var doubleValue: Double? {
        switch self {
        case let .double(value): return value
        case let .integer(value): return Double(value)
        default: return nil
        }
    }

    /// The value as an array of Doubles, if it is numeric (a scalar gives one element).
    public var doubleValues: [Double]? {
        switch self {
        case let .double(value): return [value]
        case let .integer(value): return [Double(value)]
        case let .doubles(values): return values
        case let .integers(values): return values.map(Double.init)
        default: return nil
        }
    }

    /// The value as a String, if it is a scalar string.
    public var stringValue: String? {
        if case let .string(value) = self { return value }
        return nil
    }
}

private func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n") + "\""
}

private func bracketed(_ items: [String]) -> String {
    // Long arrays (e.g. per-iteration residuals) would drown the tree listing.
    let limit = 16
    if items.count <= limit { return "[" + items.joined(separator: ", ") + "]" }
    return "[" + items.prefix(limit).joined(separator: ", ") + ", … (\(items.count) values)]"
}

/// The element type of a dataset or attribute as stored in the file.
public enum HDF5ElementType: Hashable, Sendable, CustomStringConvertible {
    /// IEEE floating point of the given width (32 or 64).
    case float(bits: Int)
    /// Two's-complement integer of the given width and signedness.
    case integer(bits: Int, signed: Bool)
    /// A string (variable or fixed length).
    case string
    /// Any other HDF5 class (compound, enum, reference, …), named.
    case other(String)

    /// "float32", "int64", "uint8", "string", or the other class's name.
    public var description: String {
        switch self {
        case let .float(bits): return "float\(bits)"
        case let .integer(bits, signed): return (signed ? "int" : "uint") + "\(bits)"
        case .string: return "string"
        case let .other(name): return name
        }
    }
}

/// Swift element types that map onto an HDF5 numeric type.
public protocol HDF5Numeric: Sendable {
    /// The HDF5 type values of this Swift type are stored as.
    static var hdf5ElementType: HDF5ElementType { get }
}

extension Float: HDF5Numeric {
    /// float32.
    public static var hdf5ElementType: HDF5ElementType { .float(bits: 32) }
}

extension Double: HDF5Numeric {
    /// float64.
    public static var hdf5ElementType: HDF5ElementType { .float(bits: 64) }
}

extension Int32: HDF5Numeric {
    /// int32.
    public static var hdf5ElementType: HDF5ElementType { .integer(bits: 32, signed: true) }
}

extension Int64: HDF5Numeric {
    /// int64.
    public static var hdf5ElementType: HDF5ElementType { .integer(bits: 64, signed: true) }
}

extension Int: HDF5Numeric {
    /// int64 (Int is 64-bit on every supported platform).
    public static var hdf5ElementType: HDF5ElementType { .integer(bits: 64, signed: true) }
}

extension UInt8: HDF5Numeric {
    /// uint8 (masks, label images).
    public static var hdf5ElementType: HDF5ElementType { .integer(bits: 8, signed: false) }
}

/// How a numeric dataset is laid out and filtered on disk.
///
/// Chunking is required for filters; with filters on and no `chunkShape`, a chunk shape is chosen
/// that keeps each chunk at most 1 MiB (HDF5's default chunk cache size), halving the longest
/// dimension until it fits. Scalar and empty datasets are always stored contiguous, unfiltered.
public struct HDF5DatasetOptions: Hashable, Sendable {
    /// Chunk shape in HDF5 dimension order; nil chooses one when filters are on, else contiguous.
    public var chunkShape: [Int]?
    /// zlib deflate level 0–9, or nil for no compression.
    public var deflateLevel: Int?
    /// Whether the byte-shuffle filter runs before deflate (helps floating-point data compress).
    public var shuffle: Bool

    /// Options with the given chunking and filters.
    public init(chunkShape: [Int]? = nil, deflateLevel: Int? = 4, shuffle: Bool = true) {
        self.chunkShape = chunkShape
        self.deflateLevel = deflateLevel
        self.shuffle = shuffle
    }

    /// Chunked, shuffle + deflate level 4 (h5py's default gzip level): the default for writes.
    public static let compressed = HDF5DatasetOptions()
    /// Contiguous and unfiltered: fastest to write, largest on disk.
    public static let contiguous = HDF5DatasetOptions(chunkShape: nil, deflateLevel: nil, shuffle: false)
}

/// One link inside a group.
public struct HDF5Child: Hashable, Sendable {
    /// What a link points at.
    public enum Kind: Hashable, Sendable {
        /// A group.
        case group
        /// A dataset.
        case dataset
        /// A named datatype, a dangling link, or anything else.
        case other
    }

    /// The link name (one path component).
    public var name: String
    /// The kind of object it points at.
    public var kind: Kind

    /// A link named `name` to an object of `kind`.
    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}
