import CHDF5

/// Reading and writing attributes on any open object (group or dataset).
enum HDF5Attributes {
    /// Writes `value` as attribute `name` of `object`, replacing an existing one.
    ///
    /// `shape` overrides the dataspace of an array value (e.g. [4, 4] for an affine); the
    /// values are then in C order.
    static func write(_ value: HDF5Value, named name: String, on object: hid_t, shape: [Int]? = nil,
                      context: HDF5Context) throws(QSMError) {
        HDF5Library.prepare()
        let context = context.at("\(context.object)@\(name)")
        guard !name.isEmpty else { throw context.plainFailure("an attribute needs a name") }
        let existing = H5Aexists(object, name)
        try context.status(existing, "cannot check whether the attribute exists")
        if existing > 0 { try context.status(H5Adelete(object, name), "cannot replace the attribute") }

        let count: Int
        switch value {
        case .double, .integer, .string: count = 1
        case let .doubles(values): count = values.count
        case let .integers(values): count = values.count
        case let .strings(values): count = values.count
        }
        let dims: [Int]
        switch value {
        case .double, .integer, .string: dims = []
        default: dims = shape ?? [count]
        }
        guard dims.reduce(1, *) == count else {
            throw context.plainFailure("\(count) values do not fill shape \(dims)")
        }
        let space = try context.id(HDF5Library.makeSpace(dims), "cannot make a dataspace")
        defer { H5Sclose(space) }

        switch value {
        case let .double(scalar):
            try create([scalar], type: chdf5_T_NATIVE_DOUBLE(), space: space, name: name, on: object, context)
        case let .doubles(values):
            try create(values, type: chdf5_T_NATIVE_DOUBLE(), space: space, name: name, on: object, context)
        case let .integer(scalar):
            try create([Int64(scalar)], type: chdf5_T_NATIVE_INT64(), space: space, name: name, on: object, context)
        case let .integers(values):
            try create(values.map(Int64.init), type: chdf5_T_NATIVE_INT64(), space: space, name: name,
                       on: object, context)
        case let .string(text):
            try createStrings([text], space: space, name: name, on: object, context)
        case let .strings(texts):
            try createStrings(texts, space: space, name: name, on: object, context)
        }
    }

    private static func create<T>(_ values: [T], type: hid_t, space: hid_t, name: String, on object: hid_t,
                                  _ context: HDF5Context) throws(QSMError) {
        let attribute = try context.id(H5Acreate2(object, name, type, space, chdf5_P_DEFAULT(), chdf5_P_DEFAULT()),
                                       "cannot create the attribute")
        defer { H5Aclose(attribute) }
        // A zero-length array still needs a valid pointer.
        let status = values.isEmpty
            ? withUnsafeBytes(of: 0) { H5Awrite(attribute, type, $0.baseAddress) }
            : values.withUnsafeBytes { H5Awrite(attribute, type, $0.baseAddress) }
        try context.status(status, "cannot write the attribute")
    }

    private static func createStrings(_ texts: [String], space: hid_t, name: String, on object: hid_t,
                                      _ context: HDF5Context) throws(QSMError) {
        let type = try context.id(HDF5Library.makeVariableStringType(), "cannot make a string type")
        defer { H5Tclose(type) }
        let attribute = try context.id(H5Acreate2(object, name, type, space, chdf5_P_DEFAULT(), chdf5_P_DEFAULT()),
                                       "cannot create the attribute")
        defer { H5Aclose(attribute) }
        let status = HDF5Library.withCStringArray(texts) { H5Awrite(attribute, type, $0) }
        try context.status(status, "cannot write the attribute")
    }

    /// The names of the attributes of `object`, in name order.
    static func names(of object: hid_t, context: HDF5Context) throws(QSMError) -> [String] {
        HDF5Library.prepare()
        var info = H5O_info_t()
        try context.status(H5Oget_info2(object, &info, UInt32(H5O_INFO_NUM_ATTRS)), "cannot list attributes")
        var names: [String] = []
        for index in 0..<info.num_attrs {
            let length = H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, chdf5_P_DEFAULT())
            guard length >= 0 else { throw context.failure("cannot read the name of attribute \(index)") }
            var buffer = [CChar](repeating: 0, count: length + 1)
            let written = H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, length + 1,
                                             chdf5_P_DEFAULT())
            guard written >= 0 else { throw context.failure("cannot read the name of attribute \(index)") }
            names.append(String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// The stored type of attribute `name` of `object`.
    static func elementType(named name: String, on object: hid_t, context: HDF5Context) throws(QSMError)
        -> HDF5ElementType {
        HDF5Library.prepare()
        let context = context.at("\(context.object)@\(name)")
        let attribute = try context.id(H5Aopen(object, name, chdf5_P_DEFAULT()), "no such attribute")
        defer { H5Aclose(attribute) }
        let type = try context.id(H5Aget_type(attribute), "cannot read the attribute's type")
        defer { H5Tclose(type) }
        return HDF5Library.elementType(of: type)
    }

    /// Reads attribute `name` of `object`; throws for types `HDF5Value` cannot hold.
    static func read(named name: String, on object: hid_t, context: HDF5Context) throws(QSMError) -> HDF5Value {
        HDF5Library.prepare()
        let context = context.at("\(context.object)@\(name)")
        let attribute = try context.id(H5Aopen(object, name, chdf5_P_DEFAULT()), "no such attribute")
        defer { H5Aclose(attribute) }
        let type = try context.id(H5Aget_type(attribute), "cannot read the attribute's type")
        defer { H5Tclose(type) }
        let space = try context.id(H5Aget_space(attribute), "cannot read the attribute's dataspace")
        defer { H5Sclose(space) }
        let spaceClass = H5Sget_simple_extent_type(space)
        let scalar = spaceClass == H5S_SCALAR
        let count = spaceClass == H5S_NULL ? 0 : Int(H5Sget_simple_extent_npoints(space))
        guard count >= 0 else { throw context.failure("cannot read the attribute's size") }

        let elementType = HDF5Library.elementType(of: type)
        switch elementType {
        case .float:
            let values: [Double] = try readNumbers(attribute, type: chdf5_T_NATIVE_DOUBLE(), count: count, context)
            return scalar ? .double(values[0]) : .doubles(values)
        case .integer(bits: 64, signed: false):
            // Read unsigned 64-bit exactly, then refuse values Int cannot hold, rather than let
            // HDF5 clamp them to Int64.max.
            let raw: [UInt64] = try readNumbers(attribute, type: chdf5_T_NATIVE_UINT64(), count: count, context)
            guard raw.allSatisfy({ $0 <= UInt64(Int.max) }) else {
                throw context.plainFailure("uint64 value exceeds the Int range")
            }
            let values = raw.map { Int($0) }
            return scalar ? .integer(values[0]) : .integers(values)
        case .integer:
            let raw: [Int64] = try readNumbers(attribute, type: chdf5_T_NATIVE_INT64(), count: count, context)
            let values = raw.map { Int($0) }
            return scalar ? .integer(values[0]) : .integers(values)
        case .string:
            let texts = try HDF5Library.readStrings(fileType: type, space: space, count: count, context: context) {
                H5Aread(attribute, $0, $1)
            }
            return scalar ? .string(texts.first ?? "") : .strings(texts)
        case let .other(kind):
            throw context.plainFailure("attribute of type \(kind) is not supported")
        }
    }

    private static func readNumbers<T: Numeric & Sendable>(_ attribute: hid_t, type: hid_t, count: Int,
                                                         _ context: HDF5Context) throws(QSMError) -> [T] {
        // One spare element so that a zero-length read still passes a valid pointer.
        var values = [T](repeating: 0, count: count + 1)
        let status = values.withUnsafeMutableBytes { H5Aread(attribute, type, $0.baseAddress) }
        try context.status(status, "cannot read the attribute")
        return Array(values.prefix(count))
    }
}

/// An HDF5 object that carries attributes (a group or a dataset).
public protocol HDF5AttributeHolder: AnyObject {
    /// Sets attribute `name` (replacing an existing one).
    func setAttribute(_ name: String, value: HDF5Value) throws(QSMError)
    /// The names of the attributes, in name order.
    func attributeNames() throws(QSMError) -> [String]
    /// Attribute `name`; throws if it is missing or of a type `HDF5Value` cannot hold.
    func attribute(_ name: String) throws(QSMError) -> HDF5Value
}

extension HDF5AttributeHolder {
    /// Sets a float64 scalar attribute.
    public func setAttribute(_ name: String, value: Double) throws(QSMError) { try setAttribute(name, value: .double(value)) }
    /// Sets an int64 scalar attribute.
    public func setAttribute(_ name: String, value: Int) throws(QSMError) { try setAttribute(name, value: .integer(value)) }
    /// Sets a variable-length UTF-8 string attribute.
    public func setAttribute(_ name: String, value: String) throws(QSMError) { try setAttribute(name, value: .string(value)) }
    /// Sets a 1-D float64 array attribute.
    public func setAttribute(_ name: String, value: [Double]) throws(QSMError) { try setAttribute(name, value: .doubles(value)) }
    /// Sets a 1-D int64 array attribute.
    public func setAttribute(_ name: String, value: [Int]) throws(QSMError) { try setAttribute(name, value: .integers(value)) }

    /// All attributes by name; throws if one has a type `HDF5Value` cannot hold.
    public func attributes() throws(QSMError) -> [String: HDF5Value] {
        var all: [String: HDF5Value] = [:]
        for name in try attributeNames() { all[name] = try attribute(name) }
        return all
    }
}
