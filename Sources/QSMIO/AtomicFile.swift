import Foundation

/// File-system helpers that never leave a partial output behind.
public enum AtomicFile {
    /// Writes `bytes` to a temporary name beside `path`, then renames it into place.
    public static func write(_ bytes: [UInt8], to path: String) throws(QSMError) {
        try write(Data(bytes), to: path)
    }

    /// Writes `data` to a temporary name beside `path`, then renames it into place.
    public static func write(_ data: Data, to path: String) throws(QSMError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        let temporary = URL(fileURLWithPath: temporaryPath(for: path))
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: temporary)
            try commit(temporary.path, to: path)
        } catch let error as QSMError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw .invalidFile(path, "cannot write: \(error.localizedDescription)")
        }
    }

    /// A temporary path beside `path` for writers that need a file name (HDF5); pair with `commit`.
    public static func temporaryPath(for path: String) -> String {
        // Process id and a fresh UUID: concurrent writers (threads or processes) never share a name.
        let url = URL(fileURLWithPath: path)
        let unique = "\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial-\(unique)").path
    }

    /// Renames a finished temporary file onto `path` (atomic on one file system).
    public static func commit(_ temporary: String, to path: String) throws(QSMError) {
        if rename(temporary, path) != 0 {
            try? FileManager.default.removeItem(atPath: temporary)
            throw .invalidFile(path, "cannot move the finished file into place")
        }
    }
}
