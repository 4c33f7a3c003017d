import CHDF5
import Foundation

/// Glue between the HDF5 C library and the Swift types: error handling, type ids, strings.
enum HDF5Library {
    /// Silences the calling thread's automatic error printing; call at every entry point.
    ///
    /// The Debian build is thread-safe, and in thread-safe builds each thread has its own error
    /// stack with its own automatic-printing setting, so one call at start-up would only silence
    /// the thread that made it. The call is a few loads and stores under HDF5's lock.
    static func prepare() {
        _ = chdf5_silence_errors()
    }

    /// The most specific message on this thread's HDF5 error stack (empty if none); clears it.
    static func takeErrorMessage() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        buffer.withUnsafeMutableBufferPointer { chdf5_take_error_message($0.baseAddress, $0.count) }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The native (in-memory) type id for a numeric element type; nil for strings and others.
    static func nativeType(_ type: HDF5ElementType) -> hid_t? {
        switch type {
        case .float(bits: 32): return chdf5_T_NATIVE_FLOAT()
        case .float(bits: 64): return chdf5_T_NATIVE_DOUBLE()
        case .integer(bits: 8, signed: true): return chdf5_T_NATIVE_INT8()
        case .integer(bits: 8, signed: false): return chdf5_T_NATIVE_UINT8()
        case .integer(bits: 16, signed: true): return chdf5_T_NATIVE_INT16()
        case .integer(bits: 32, signed: true): return chdf5_T_NATIVE_INT32()
        case .integer(bits: 64, signed: true): return chdf5_T_NATIVE_INT64()
        case .integer(bits: 64, signed: false): return chdf5_T_NATIVE_UINT64()
        default: return nil
        }
    }

    /// What an HDF5 datatype holds, for listings and type checks.
    static func elementType(of type: hid_t) -> HDF5ElementType {
        let bits = Int(H5Tget_size(type)) * 8
        switch H5Tget_class(type) {
        case H5T_FLOAT: return .float(bits: bits)
        case H5T_INTEGER: return .integer(bits: bits, signed: H5Tget_sign(type) != H5T_SGN_NONE)
        case H5T_STRING: return .string
        case H5T_COMPOUND: return .other("compound")
        case H5T_ENUM: return .other("enum")
        case H5T_ARRAY: return .other("array")
        case H5T_VLEN: return .other("variable-length sequence")
        case H5T_REFERENCE: return .other("reference")
        case H5T_OPAQUE: return .other("opaque")
        case H5T_BITFIELD: return .other("bitfield")
        case H5T_TIME: return .other("time")
        default: _ = takeErrorMessage(); return .other("unknown type")
        }
    }

    /// A new variable-length UTF-8 string type; the caller closes it.
    static func makeVariableStringType() -> hid_t {
        let type = H5Tcopy(chdf5_T_C_S1())
        if type >= 0 {
            _ = H5Tset_size(type, chdf5_T_VARIABLE())
            _ = H5Tset_cset(type, H5T_CSET_UTF8)
        }
        return type
    }

    /// Dimensions of a dataspace (empty for a scalar or null dataspace).
    static func dimensions(of space: hid_t) -> [Int] {
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank > 0 else { return [] }
        var dims = [hsize_t](repeating: 0, count: rank)
        _ = H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    /// A simple dataspace with `shape`, or a scalar dataspace when `shape` is empty; caller closes.
    static func makeSpace(_ shape: [Int]) -> hid_t {
        if shape.isEmpty { return H5Screate(H5S_SCALAR) }
        let dims = shape.map { hsize_t($0) }
        return H5Screate_simple(Int32(dims.count), dims, nil)
    }

    /// Calls `body` with a pointer to a `char *` array holding copies of `strings`.
    ///
    /// HDF5 reads variable-length strings through `char **`; the copies live until `body` returns.
    /// A string with an embedded NUL is cut at the NUL (C strings cannot hold one).
    static func withCStringArray<R>(_ strings: [String], _ body: (UnsafeRawPointer) -> R) -> R {
        let copies: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        if copies.isEmpty {
            var placeholder: UnsafeMutablePointer<CChar>? = nil
            return withUnsafePointer(to: &placeholder) { body(UnsafeRawPointer($0)) }
        }
        return copies.withUnsafeBytes { body($0.baseAddress!) }
    }

    /// Reads `count` strings of file type `fileType` through `read(memoryType, buffer)`.
    ///
    /// Variable-length strings are copied out and their HDF5-allocated memory reclaimed; fixed-
    /// length strings are cut at their first NUL (and trailing blanks when space-padded).
    static func readStrings(fileType: hid_t, space: hid_t, count: Int, context: HDF5Context,
                            read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws(QSMError) -> [String] {
        guard count > 0 else { return [] }
        let variable = H5Tis_variable_str(fileType)
        if variable > 0 {
            let memoryType = try context.id(makeVariableStringType(), "cannot make a string type")
            defer { H5Tclose(memoryType) }
            _ = H5Tset_cset(memoryType, H5Tget_cset(fileType))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
            try context.status(status, "cannot read strings")
            defer {
                _ = pointers.withUnsafeMutableBytes {
                    H5Dvlen_reclaim(memoryType, space, chdf5_P_DEFAULT(), $0.baseAddress)
                }
            }
            return pointers.map { pointer in
                guard let pointer else { return "" }
                return String(decoding: UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)),
                              as: UTF8.self)
            }
        }
        try context.status(herr_t(variable), "cannot inspect the string type")
        let memoryType = try context.id(H5Tcopy(fileType), "cannot copy the string type")
        defer { H5Tclose(memoryType) }
        let size = Int(H5Tget_size(fileType))
        let spacePadded = H5Tget_strpad(fileType) == H5T_STR_SPACEPAD
        var bytes = [UInt8](repeating: 0, count: max(1, count * size))
        let status = bytes.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
        try context.status(status, "cannot read strings")
        return (0..<count).map { index in
            var field = bytes[(index * size)..<((index + 1) * size)].prefix { $0 != 0 }
            if spacePadded { while field.last == 0x20 { field.removeLast() } }
            return String(decoding: field, as: UTF8.self)
        }
    }
}

/// Where an HDF5 call happens (file and object path), to turn failures into a `QSMError`.
struct HDF5Context {
    /// The file as the user named it (the final name for atomic writes).
    var file: String
    /// Absolute path of the object inside the file.
    var object: String

    /// The error for `problem` at this object, with HDF5's most specific message appended.
    func failure(_ problem: String) -> QSMError {
        let detail = HDF5Library.takeErrorMessage()
        return .invalidFile(file, "\(object): \(problem)" + (detail.isEmpty ? "" : " (HDF5: \(detail))"))
    }

    /// The error for `problem` at this object, without consulting HDF5's error stack.
    func plainFailure(_ problem: String) -> QSMError {
        .invalidFile(file, "\(object): \(problem)")
    }

    /// Returns `id`, or throws `problem` if HDF5 returned a negative id.
    @discardableResult
    func id(_ id: hid_t, _ problem: @autoclosure () -> String) throws(QSMError) -> hid_t {
        if id < 0 { throw failure(problem()) }
        return id
    }

    /// Throws `problem` if HDF5 returned a negative status.
    func status(_ status: herr_t, _ problem: @autoclosure () -> String) throws(QSMError) {
        if status < 0 { throw failure(problem()) }
    }

    /// The same file, another object.
    func at(_ object: String) -> HDF5Context { HDF5Context(file: file, object: object) }
}

/// An absolute object path: "/" for "" or ".", a leading "/" otherwise, no trailing "/".
func normalizedHDF5Path(_ path: String) -> String {
    let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
    return "/" + parts.joined(separator: "/")
}
