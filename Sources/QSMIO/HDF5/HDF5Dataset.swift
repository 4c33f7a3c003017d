import CHDF5

/// An open HDF5 dataset; keeps its file open while it lives.
public final class HDF5Dataset: HDF5AttributeHolder {
    /// The file the dataset belongs to (held so the file cannot close first).
    public let file: HDF5File
    /// Absolute path of the dataset inside the file.
    public let path: String
    /// Dimensions in HDF5 order (slowest first, as h5py and h5dump show them); empty for a scalar.
    public let shape: [Int]
    /// The element type as stored in the file.
    public let elementType: HDF5ElementType

    private let id: hid_t

    /// Takes ownership of an open dataset id (closing it if the dataset cannot be inspected).
    init(file: HDF5File, id: hid_t, context: HDF5Context) throws(QSMError) {
        let type = H5Dget_type(id)
        let space = H5Dget_space(id)
        defer {
            if type >= 0 { H5Tclose(type) }
            if space >= 0 { H5Sclose(space) }
        }
        guard type >= 0, space >= 0 else {
            let error = context.failure("cannot read the dataset's type and shape")
            H5Dclose(id)
            throw error
        }
        self.file = file
        self.id = id
        self.path = context.object
        self.shape = HDF5Library.dimensions(of: space)
        self.elementType = HDF5Library.elementType(of: type)
    }

    deinit {
        // After `file.close()` the id is already closed (strong close) and must not be closed twice.
        guard !file.isClosed else { return }
        HDF5Library.prepare()
        _ = H5Dclose(id)
    }

    /// Number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    /// Reads all values, converted to `T`.
    ///
    /// Conversions between numeric types are done by HDF5; a value that does not fit `T`
    /// (out of range, or a fraction, NaN or infinity read as an integer) fails the read instead of
    /// being clamped. Narrowing float64 to float32 rounds.
    public func read<T: HDF5Numeric>(as: T.Type = T.self) throws(QSMError) -> [T] {
        let context = try file.usable(path)
        switch elementType {
        case .float, .integer: break
        default: throw context.plainFailure("holds \(elementType) values, not numbers")
        }
        guard let memoryType = HDF5Library.nativeType(T.hdf5ElementType) else {
            throw context.plainFailure("\(T.hdf5ElementType) has no native HDF5 type")
        }
        let transfer = try context.id(H5Pcreate(chdf5_P_DATASET_XFER()), "cannot make transfer properties")
        defer { H5Pclose(transfer) }
        let integerDestination: Int32
        if case .integer = T.hdf5ElementType { integerDestination = 1 } else { integerDestination = 0 }
        try context.status(chdf5_abort_on_lossy_conversion(transfer, integerDestination),
                           "cannot set the conversion checks")
        let count = self.count
        guard count > 0 else { return [] }
        var status: herr_t = -1
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = H5Dread(id, memoryType, chdf5_S_ALL(), chdf5_S_ALL(), transfer, buffer.baseAddress)
            // Numeric elements are trivial: a failed read leaves bytes that are never exposed.
            initialized = count
        }
        try context.status(status, "cannot read as \(T.hdf5ElementType) (a value may not fit that type)")
        return values
    }

    /// Reads all values of a string dataset (variable or fixed length).
    public func readStrings() throws(QSMError) -> [String] {
        let context = try file.usable(path)
        guard elementType == .string else { throw context.plainFailure("holds \(elementType) values, not strings") }
        let type = try context.id(H5Dget_type(id), "cannot read the dataset's type")
        defer { H5Tclose(type) }
        let space = try context.id(H5Dget_space(id), "cannot read the dataset's shape")
        defer { H5Sclose(space) }
        return try HDF5Library.readStrings(fileType: type, space: space, count: count, context: context) {
            H5Dread(id, $0, chdf5_S_ALL(), chdf5_S_ALL(), chdf5_P_DEFAULT(), $1)
        }
    }

    /// Bytes the dataset occupies in the file (after compression).
    public var storageSize: Int {
        HDF5Library.prepare()
        return Int(H5Dget_storage_size(id))
    }

    /// The chunking and filters the dataset was created with (contiguous: nil chunk, no filters).
    public func storageOptions() throws(QSMError) -> HDF5DatasetOptions {
        try storageDetails().options
    }

    /// Chunking, the filters we know, and the names of any others.
    func storageDetails() throws(QSMError) -> (options: HDF5DatasetOptions, otherFilters: [String]) {
        let context = try file.usable(path)
        let creation = try context.id(H5Dget_create_plist(id), "cannot read the creation properties")
        defer { H5Pclose(creation) }
        var options = HDF5DatasetOptions(chunkShape: nil, deflateLevel: nil, shuffle: false)
        var others: [String] = []
        guard H5Pget_layout(creation) == H5D_CHUNKED else { return (options, others) }
        var dims = [hsize_t](repeating: 0, count: 32)
        let rank = H5Pget_chunk(creation, Int32(dims.count), &dims)
        try context.status(rank, "cannot read the chunk shape")
        options.chunkShape = dims.prefix(Int(rank)).map { Int($0) }
        let filterCount = H5Pget_nfilters(creation)
        try context.status(filterCount, "cannot read the filters")
        for index in 0..<UInt32(filterCount) {
            var flags: UInt32 = 0, configuration: UInt32 = 0
            var valueCount = 8
            var values = [UInt32](repeating: 0, count: valueCount)
            var name = [CChar](repeating: 0, count: 64)
            let filter = H5Pget_filter2(creation, index, &flags, &valueCount, &values, name.count, &name, &configuration)
            try context.status(filter, "cannot read filter \(index)")
            switch filter {
            case H5Z_filter_t(H5Z_FILTER_DEFLATE): options.deflateLevel = Int(values[0])
            case H5Z_filter_t(H5Z_FILTER_SHUFFLE): options.shuffle = true
            default:
                let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                others.append(text.isEmpty ? "filter \(filter)" : text)
            }
        }
        return (options, others)
    }

    /// Sets attribute `name` (replacing an existing one).
    public func setAttribute(_ name: String, value: HDF5Value) throws(QSMError) {
        let context = try file.writable(path)
        try HDF5Attributes.write(value, named: name, on: id, context: context)
    }

    /// Sets an array attribute with a multi-dimensional dataspace (values in C order).
    func setAttribute(_ name: String, values: [Double], shape: [Int]) throws(QSMError) {
        let context = try file.writable(path)
        try HDF5Attributes.write(.doubles(values), named: name, on: id, shape: shape, context: context)
    }

    /// The names of the dataset's attributes, in name order.
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
}
