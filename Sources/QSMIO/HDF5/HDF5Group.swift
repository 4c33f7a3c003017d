import CHDF5

/// An open HDF5 group; keeps its file open while it lives.
public final class HDF5Group: HDF5AttributeHolder {
    /// The file the group belongs to.
    public let file: HDF5File
    /// Absolute path of the group inside the file.
    public let path: String

    private let id: hid_t

    /// Takes ownership of an open group id.
    init(file: HDF5File, id: hid_t, path: String) {
        self.file = file
        self.id = id
        self.path = path
    }

    deinit {
        // After `file.close()` the id is already closed (strong close) and must not be closed twice.
        guard !file.isClosed else { return }
        HDF5Library.prepare()
        _ = H5Gclose(id)
    }

    /// Calls `body` with the group id, after checking the file is still open.
    func withID<R>(_ body: (hid_t, HDF5Context) throws(QSMError) -> R) throws(QSMError) -> R {
        let context = try file.usable(path)
        return try body(id, context)
    }

    /// Sets attribute `name` (replacing an existing one).
    public func setAttribute(_ name: String, value: HDF5Value) throws(QSMError) {
        let context = try file.writable(path)
        try HDF5Attributes.write(value, named: name, on: id, context: context)
    }

    /// The names of the group's attributes, in name order.
    public func attributeNames() throws(QSMError) -> [String] {
        try HDF5Attributes.names(of: id, context: file.usable(path))
    }

    /// Attribute `name`; throws if it is missing or of a type `HDF5Value` cannot hold.
    public func attribute(_ name: String) throws(QSMError) -> HDF5Value {
        try HDF5Attributes.read(named: name, on: id, context: file.usable(path))
    }

    /// The stored type of attribute `name`.
    func attributeType(_ name: String) throws(QSMError) -> HDF5ElementType {
        try HDF5Attributes.elementType(named: name, on: id, context: file.usable(path))
    }

    /// The links in this group, in name order.
    public func children() throws(QSMError) -> [HDF5Child] {
        try file.children(of: path)
    }
}
