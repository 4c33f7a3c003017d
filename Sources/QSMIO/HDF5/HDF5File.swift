import CHDF5
import Foundation

/// An open HDF5 file; closes itself when the last reference (including its groups and datasets) goes.
///
/// Paths inside the file are absolute ("/results/chi") or relative to the root ("results/chi").
/// Every failure throws `QSMError.invalidFile(file, "<object path>: <problem>")` with HDF5's most
/// specific message appended; HDF5's own error printing is switched off.
///
/// Atomic creation (`create(path, atomic: true)`) writes to a hidden temporary name beside
/// `path` and renames it into place in `close()`; a file that is never closed is deleted, so a
/// crash or an error never leaves a half-written file under `path`.
public final class HDF5File {
    /// The file's path as given (for an atomic file, the final name).
    public let path: String
    /// Whether the file was opened or created for writing.
    public let isWritable: Bool

    private let id: hid_t
    private let temporaryPath: String?
    /// Set by `close()`; the strong close has then closed every group and dataset id as well.
    private(set) var isClosed = false

    private init(path: String, id: hid_t, isWritable: Bool, temporaryPath: String?) {
        self.path = path
        self.id = id
        self.isWritable = isWritable
        self.temporaryPath = temporaryPath
    }

    deinit {
        guard !isClosed else { return }
        HDF5Library.prepare()
        _ = H5Fclose(id)
        if let temporaryPath { try? FileManager.default.removeItem(atPath: temporaryPath) }
    }

    /// Creates (or truncates) `path` for writing; with `atomic`, it appears only on `close()`.
    public static func create(_ path: String, atomic: Bool = false) throws(QSMError) -> HDF5File {
        HDF5Library.prepare()
        let target = atomic ? AtomicFile.temporaryPath(for: path) : path
        let context = HDF5Context(file: path, object: "/")
        let access = try accessList(context)
        defer { H5Pclose(access) }
        let id = H5Fcreate(target, chdf5_F_ACC_TRUNC(), chdf5_P_DEFAULT(), access)
        guard id >= 0 else {
            throw .invalidFile(path, "cannot create: \(systemReason(HDF5Library.takeErrorMessage()))")
        }
        return HDF5File(path: path, id: id, isWritable: true, temporaryPath: atomic ? target : nil)
    }

    /// Opens an existing file, read-only unless `writable`.
    public static func open(_ path: String, writable: Bool = false) throws(QSMError) -> HDF5File {
        HDF5Library.prepare()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .invalidFile(path, "no such file")
        }
        guard !isDirectory.boolValue else { throw .invalidFile(path, "is a directory, not an HDF5 file") }
        let signature = H5Fis_hdf5(path)
        guard signature >= 0 else { throw .invalidFile(path, openProblem(HDF5Library.takeErrorMessage())) }
        guard signature > 0 else { throw .invalidFile(path, "not an HDF5 file (no HDF5 signature)") }
        let context = HDF5Context(file: path, object: "/")
        let access = try accessList(context, locking: writable)
        defer { H5Pclose(access) }
        let id = H5Fopen(path, writable ? chdf5_F_ACC_RDWR() : chdf5_F_ACC_RDONLY(), access)
        guard id >= 0 else { throw .invalidFile(path, openProblem(HDF5Library.takeErrorMessage())) }
        return HDF5File(path: path, id: id, isWritable: writable, temporaryPath: nil)
    }

    /// The operating system's reason inside HDF5's "unable to open file" message, if it has one.
    ///
    /// HDF5 reports e.g. "unable to open file: name = '…', errno = 2, error message = 'No such file
    /// or directory', flags = 13, o_flags = 242"; the user needs only the reason.
    private static func systemReason(_ message: String) -> String {
        guard let start = message.range(of: "error message = '"),
              let end = message[start.upperBound...].firstIndex(of: "'") else { return message }
        return String(message[start.upperBound..<end])
    }

    /// Why a file with an HDF5 signature did not open, from HDF5's innermost message.
    private static func openProblem(_ message: String) -> String {
        if message.contains("error message = '") { return "cannot open: \(systemReason(message))" }
        if message.contains("unable to lock file") {
            return "is locked by another process writing it (HDF5: \(message))"
        }
        if message.contains("truncated file") { return "truncated HDF5 file (HDF5: \(message))" }
        return "corrupt HDF5 file (HDF5: \(message))"
    }

    /// File access properties: strong close, and file locking (skipped where unsupported, e.g. NFS).
    ///
    /// Readers do not lock: every file qsmbench finishes appears by an atomic rename, so a reader
    /// never sees a partial file, and a shared lock would only make a reader fail (EAGAIN) while
    /// any process still holds an inherited descriptor of a file it wrote.
    ///
    /// A strong close closes the groups and datasets still open in the file, so `close()` really
    /// releases the file and its lock (with HDF5's default weak close, a dataset object still
    /// referenced somewhere would keep other processes from opening the finished file). Those
    /// objects then skip their own close in `deinit`.
    private static func accessList(_ context: HDF5Context, locking: Bool = true) throws(QSMError) -> hid_t {
        let access = try context.id(H5Pcreate(chdf5_P_FILE_ACCESS()), "cannot make file access properties")
        _ = H5Pset_fclose_degree(access, H5F_CLOSE_STRONG)
        _ = H5Pset_file_locking(access, locking, true)
        return access
    }

    /// Flushes and closes the file; an atomic file is renamed into place. Idempotent.
    ///
    /// Groups and datasets of this file that are still referenced are closed too; using them
    /// afterwards throws.
    public func close() throws(QSMError) {
        guard !isClosed else { return }
        isClosed = true
        HDF5Library.prepare()
        let flushed = isWritable ? H5Fflush(id, H5F_SCOPE_GLOBAL) : 0
        let flushMessage = flushed < 0 ? HDF5Library.takeErrorMessage() : ""
        let closed = H5Fclose(id)
        let closeMessage = closed < 0 ? HDF5Library.takeErrorMessage() : ""
        if flushed < 0 || closed < 0 {
            if let temporaryPath { try? FileManager.default.removeItem(atPath: temporaryPath) }
            throw .invalidFile(path, "cannot finish writing: \(flushMessage.isEmpty ? closeMessage : flushMessage)")
        }
        if let temporaryPath { try AtomicFile.commit(temporaryPath, to: path) }
    }

    // MARK: - Groups and navigation

    /// The root group "/".
    public var root: HDF5Group {
        get throws(QSMError) { try group("/") }
    }

    /// Whether an object exists at `path` (every link along the path resolves).
    public func exists(_ path: String) -> Bool {
        guard !isClosed else { return false }
        HDF5Library.prepare()
        let path = normalizedHDF5Path(path)
        if path == "/" { return true }
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            guard H5Lexists(id, prefix, chdf5_P_DEFAULT()) > 0 else { _ = HDF5Library.takeErrorMessage(); return false }
        }
        let resolves = H5Oexists_by_name(id, path, chdf5_P_DEFAULT()) > 0
        _ = HDF5Library.takeErrorMessage()
        return resolves
    }

    /// The kind of object at `path`, or nil if nothing is there.
    func kind(of path: String) -> HDF5Child.Kind? {
        guard exists(path) else { return nil }
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(id, normalizedHDF5Path(path), &info, UInt32(H5O_INFO_BASIC), chdf5_P_DEFAULT()) >= 0
        else { _ = HDF5Library.takeErrorMessage(); return .other }
        switch info.type {
        case H5O_TYPE_GROUP: return .group
        case H5O_TYPE_DATASET: return .dataset
        default: return .other
        }
    }

    /// Opens the group at `path`.
    public func group(_ path: String) throws(QSMError) -> HDF5Group {
        let context = try usable(path)
        switch kind(of: context.object) {
        case .group: break
        case nil: throw context.plainFailure("no such group")
        case .dataset: throw context.plainFailure("is a dataset, not a group")
        case .other: throw context.plainFailure("is not a group")
        }
        let group = try context.id(H5Gopen2(id, context.object, chdf5_P_DEFAULT()), "cannot open the group")
        return HDF5Group(file: self, id: group, path: context.object)
    }

    /// Creates the group at `path` with any missing parents; returns it if it already exists.
    @discardableResult
    public func createGroup(_ path: String) throws(QSMError) -> HDF5Group {
        let context = try writable(path)
        if kind(of: context.object) != nil { return try group(context.object) }
        let links = try intermediateLinkList(context)
        defer { H5Pclose(links) }
        let group = try context.id(H5Gcreate2(id, context.object, links, chdf5_P_DEFAULT(), chdf5_P_DEFAULT()),
                                   "cannot create the group")
        return HDF5Group(file: self, id: group, path: context.object)
    }

    /// The links in the group at `path`, in name order.
    public func children(of path: String = "/") throws(QSMError) -> [HDF5Child] {
        let group = try group(path)
        return try group.withID { groupID, context throws(QSMError) in
            var info = H5G_info_t()
            try context.status(H5Gget_info(groupID, &info), "cannot list the group")
            var children: [HDF5Child] = []
            for index in 0..<info.nlinks {
                let length = H5Lget_name_by_idx(groupID, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0,
                                                chdf5_P_DEFAULT())
                guard length >= 0 else { throw context.failure("cannot read the name of link \(index)") }
                var buffer = [CChar](repeating: 0, count: length + 1)
                guard H5Lget_name_by_idx(groupID, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, length + 1,
                                         chdf5_P_DEFAULT()) >= 0
                else { throw context.failure("cannot read the name of link \(index)") }
                let name = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                var objectInfo = H5O_info_t()
                let kind: HDF5Child.Kind
                if H5Oget_info_by_name2(groupID, name, &objectInfo, UInt32(H5O_INFO_BASIC), chdf5_P_DEFAULT()) < 0 {
                    _ = HDF5Library.takeErrorMessage()   // a dangling soft or external link
                    kind = .other
                } else {
                    kind = objectInfo.type == H5O_TYPE_GROUP ? .group
                        : objectInfo.type == H5O_TYPE_DATASET ? .dataset : .other
                }
                children.append(HDF5Child(name: name, kind: kind))
            }
            return children
        }
    }

    // MARK: - Datasets

    /// Opens the dataset at `path`.
    public func dataset(_ path: String) throws(QSMError) -> HDF5Dataset {
        let context = try usable(path)
        switch kind(of: context.object) {
        case .dataset: break
        case nil: throw context.plainFailure("no such dataset")
        case .group: throw context.plainFailure("is a group, not a dataset")
        case .other: throw context.plainFailure("is not a dataset")
        }
        let dataset = try context.id(H5Dopen2(id, context.object, chdf5_P_DEFAULT()), "cannot open the dataset")
        return try HDF5Dataset(file: self, id: dataset, context: context)
    }

    /// Writes a new numeric dataset of `shape` (HDF5 order, slowest dimension first; C order).
    ///
    /// `values.count` must equal the product of `shape` (an empty shape is a scalar). Missing
    /// parent groups are created; an existing object at `path` is an error.
    @discardableResult
    public func writeDataset<T: HDF5Numeric>(_ path: String, values: [T], shape: [Int],
                                             options: HDF5DatasetOptions = .compressed) throws(QSMError) -> HDF5Dataset {
        let context = try writable(path)
        guard let type = HDF5Library.nativeType(T.hdf5ElementType) else {
            throw context.plainFailure("\(T.hdf5ElementType) has no native HDF5 type")
        }
        try checkNew(context, values.count, shape)
        let creation = try creationList(shape: shape, elementSize: MemoryLayout<T>.stride, options: options, context)
        defer { H5Pclose(creation) }
        let dataset = try createDataset(context, type: type, shape: shape, creation: creation)
        let status = values.isEmpty
            ? withUnsafeBytes(of: 0) { H5Dwrite(dataset, type, chdf5_S_ALL(), chdf5_S_ALL(), chdf5_P_DEFAULT(), $0.baseAddress) }
            : values.withUnsafeBytes { H5Dwrite(dataset, type, chdf5_S_ALL(), chdf5_S_ALL(), chdf5_P_DEFAULT(), $0.baseAddress) }
        let opened = try HDF5Dataset(file: self, id: dataset, context: context)
        try context.status(status, "cannot write the dataset")
        return opened
    }

    /// Writes a new dataset of variable-length UTF-8 strings (1-D unless `shape` says otherwise).
    ///
    /// Strings are stored contiguous and unfiltered: filters would only compress the heap pointers.
    @discardableResult
    public func writeDataset(_ path: String, values: [String], shape: [Int]? = nil) throws(QSMError) -> HDF5Dataset {
        let context = try writable(path)
        let shape = shape ?? [values.count]
        try checkNew(context, values.count, shape)
        let type = try context.id(HDF5Library.makeVariableStringType(), "cannot make a string type")
        defer { H5Tclose(type) }
        let creation = try context.id(H5Pcreate(chdf5_P_DATASET_CREATE()), "cannot make dataset properties")
        defer { H5Pclose(creation) }
        let dataset = try createDataset(context, type: type, shape: shape, creation: creation)
        let status = HDF5Library.withCStringArray(values) {
            H5Dwrite(dataset, type, chdf5_S_ALL(), chdf5_S_ALL(), chdf5_P_DEFAULT(), $0)
        }
        let opened = try HDF5Dataset(file: self, id: dataset, context: context)
        try context.status(status, "cannot write the dataset")
        return opened
    }

    private func checkNew(_ context: HDF5Context, _ count: Int, _ shape: [Int]) throws(QSMError) {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw context.plainFailure("shape \(shape) has a negative size") }
        guard shape.reduce(1, *) == count else {
            throw context.plainFailure("\(count) values do not fill shape \(shape)")
        }
        guard context.object != "/" else { throw context.plainFailure("the root is a group, not a dataset") }
        if exists(context.object) { throw context.plainFailure("already exists") }
    }

    private func createDataset(_ context: HDF5Context, type: hid_t, shape: [Int], creation: hid_t) throws(QSMError)
        -> hid_t {
        let space = try context.id(HDF5Library.makeSpace(shape), "cannot make a dataspace")
        defer { H5Sclose(space) }
        let links = try intermediateLinkList(context)
        defer { H5Pclose(links) }
        return try context.id(H5Dcreate2(id, context.object, type, space, links, creation, chdf5_P_DEFAULT()),
                              "cannot create the dataset")
    }

    /// Dataset creation properties for numeric data: chunking, shuffle, deflate.
    private func creationList(shape: [Int], elementSize: Int, options: HDF5DatasetOptions,
                              _ context: HDF5Context) throws(QSMError) -> hid_t {
        if let level = options.deflateLevel, !(0...9).contains(level) {
            throw context.plainFailure("deflate level \(level) is outside 0–9")
        }
        let creation = try context.id(H5Pcreate(chdf5_P_DATASET_CREATE()), "cannot make dataset properties")
        let filtered = options.deflateLevel != nil || options.shuffle
        // HDF5 cannot chunk a scalar, and a chunk may not exceed a fixed dimension of size 0.
        guard !shape.isEmpty, !shape.contains(0), filtered || options.chunkShape != nil else { return creation }
        do throws(QSMError) {
            let chunk = options.chunkShape ?? Self.automaticChunk(shape: shape, elementSize: elementSize)
            guard chunk.count == shape.count, zip(chunk, shape).allSatisfy({ $0 >= 1 && $0 <= $1 }) else {
                throw context.plainFailure("chunk shape \(chunk) does not fit dataset shape \(shape)")
            }
            let dims = chunk.map { hsize_t($0) }
            try context.status(H5Pset_chunk(creation, Int32(dims.count), dims), "cannot set the chunk shape")
            if options.shuffle { try context.status(H5Pset_shuffle(creation), "cannot enable shuffle") }
            if let level = options.deflateLevel {
                guard H5Zfilter_avail(H5Z_filter_t(H5Z_FILTER_DEFLATE)) > 0 else {
                    throw .library("HDF5", "the deflate filter is not available in this HDF5 build")
                }
                try context.status(H5Pset_deflate(creation, UInt32(level)), "cannot enable deflate")
            }
            return creation
        } catch {
            H5Pclose(creation)
            throw error
        }
    }

    /// A chunk shape of at most 1 MiB: the dataset shape with its longest dimension halved until it fits.
    ///
    /// 1 MiB is HDF5's default per-dataset chunk cache, so a whole chunk stays cached while a
    /// volume is written or read slice by slice.
    static func automaticChunk(shape: [Int], elementSize: Int) -> [Int] {
        let limit = 1 << 20
        var chunk = shape.map { max($0, 1) }
        while chunk.reduce(elementSize, *) > limit, let longest = chunk.indices.max(by: { chunk[$0] < chunk[$1] }),
              chunk[longest] > 1 {
            chunk[longest] = (chunk[longest] + 1) / 2
        }
        return chunk
    }

    private func intermediateLinkList(_ context: HDF5Context) throws(QSMError) -> hid_t {
        let links = try context.id(H5Pcreate(chdf5_P_LINK_CREATE()), "cannot make link properties")
        _ = H5Pset_create_intermediate_group(links, 1)
        _ = H5Pset_char_encoding(links, H5T_CSET_UTF8)
        return links
    }

    // MARK: - State checks

    /// The context for `path`, after checking the file is still open.
    func usable(_ path: String) throws(QSMError) -> HDF5Context {
        HDF5Library.prepare()
        let context = HDF5Context(file: self.path, object: normalizedHDF5Path(path))
        if isClosed { throw context.plainFailure("the file is already closed") }
        return context
    }

    /// The context for `path`, after checking the file is open for writing.
    func writable(_ path: String) throws(QSMError) -> HDF5Context {
        let context = try usable(path)
        if !isWritable { throw context.plainFailure("the file is open read-only") }
        return context
    }
}
