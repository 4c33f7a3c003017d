/// The NIfTI header version.
public enum NIfTIVersion: Int, Sendable, CaseIterable {
    /// NIfTI-1: 348-byte header, 16-bit dimensions, float32 geometry fields.
    case nifti1 = 1
    /// NIfTI-2: 540-byte header, 64-bit dimensions, float64 geometry fields.
    case nifti2 = 2

    /// Size of the header proper (`sizeof_hdr`).
    var headerSize: Int { self == .nifti1 ? 348 : 540 }
    /// Offset of the voxel data written by qsmbench: the header plus the 4-byte extension flag.
    var dataOffset: Int { headerSize + 4 }
}

/// A NIfTI voxel data type (the header's `datatype` code).
public enum NIfTIDataType: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Unsigned 8-bit integer (labels, masks).
    case uint8 = 2
    /// Signed 16-bit integer (scanner magnitude and phase).
    case int16 = 4
    /// Signed 32-bit integer.
    case int32 = 8
    /// IEEE 754 binary32.
    case float32 = 16
    /// Two binary32 values, real then imaginary.
    case complex64 = 32
    /// IEEE 754 binary64.
    case float64 = 64
    /// Signed 8-bit integer.
    case int8 = 256
    /// Unsigned 16-bit integer.
    case uint16 = 512
    /// Unsigned 32-bit integer.
    case uint32 = 768
    /// Signed 64-bit integer.
    case int64 = 1024
    /// Unsigned 64-bit integer.
    case uint64 = 1280
    /// Two binary64 values, real then imaginary.
    case complex128 = 1792

    /// Bytes per voxel.
    public var byteCount: Int {
        switch self {
        case .uint8, .int8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .float64, .int64, .uint64, .complex64: 8
        case .complex128: 16
        }
    }

    /// True for complex64 and complex128.
    public var isComplex: Bool { self == .complex64 || self == .complex128 }

    /// True for the integer types.
    public var isInteger: Bool {
        switch self {
        case .uint8, .int8, .int16, .uint16, .int32, .uint32, .int64, .uint64: true
        default: false
        }
    }

    /// The representable range of an integer type (as Double; the 64-bit bounds are rounded).
    var integerRange: ClosedRange<Double>? {
        switch self {
        case .uint8: 0...Double(UInt8.max)
        case .int8: Double(Int8.min)...Double(Int8.max)
        case .int16: Double(Int16.min)...Double(Int16.max)
        case .uint16: 0...Double(UInt16.max)
        case .int32: Double(Int32.min)...Double(Int32.max)
        case .uint32: 0...Double(UInt32.max)
        // 2^63 and 2^64 are not representable in the integer types: stay strictly below them.
        case .int64: -0x1p63...0x1.fffffffffffffp62
        case .uint64: 0...0x1.fffffffffffffp63
        default: nil
        }
    }

    /// The numpy-style name ("float32", "int16", …) used by `qsmbench info` and nibabel.
    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int16: "int16"
        case .int32: "int32"
        case .float32: "float32"
        case .complex64: "complex64"
        case .float64: "float64"
        case .int8: "int8"
        case .uint16: "uint16"
        case .uint32: "uint32"
        case .int64: "int64"
        case .uint64: "uint64"
        case .complex128: "complex128"
        }
    }
}

/// Voxel element types `NIfTI.write` can store (converted through Double).
public protocol NIfTIStorable: Sendable {
    /// The value as a Double (Bool: 1 for true).
    var niftiValue: Double { get }
}

extension Bool: NIfTIStorable { public var niftiValue: Double { self ? 1 : 0 } }
extension UInt8: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Int8: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Int16: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension UInt16: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Int32: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension UInt32: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Int: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Int64: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Float: NIfTIStorable { public var niftiValue: Double { Double(self) } }
extension Double: NIfTIStorable { public var niftiValue: Double { self } }
