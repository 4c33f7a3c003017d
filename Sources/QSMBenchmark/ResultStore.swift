import Foundation
import QSMIO

/// The per-run result files of a bench output folder: one JSON per finished (or failed) run, written
/// atomically, so a killed bench loses no finished run and `--resume` redoes none.
public struct ResultStore: Sendable {
    /// The bench output folder.
    public let directory: String

    /// The store under `directory` (created when needed).
    public init(directory: String) throws(QSMError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory + "/runs", withIntermediateDirectories: true)
        } catch {
            throw .invalidFile(directory, "cannot create the output folder: \(error.localizedDescription)")
        }
    }

    private func path(_ key: String, failed: Bool) -> String { "\(directory)/runs/\(key)\(failed ? ".failed" : "").json" }

    /// The finished result for `key`, if any.
    public func result(for key: String) -> RunResult? {
        guard let data = FileManager.default.contents(atPath: path(key, failed: false)) else { return nil }
        return try? JSONDecoder().decode(RunResult.self, from: data)
    }

    /// Saves a finished run (removing an earlier failure record).
    public func save(_ result: RunResult) throws(QSMError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data: Data
        do { data = try encoder.encode(result) } catch { throw .library("JSON", "cannot encode \(result.identifier)") }
        try AtomicFile.write(data, to: path(result.key, failed: false))
        try? FileManager.default.removeItem(atPath: path(result.key, failed: true))
    }

    /// Records a failed run.
    public func save(_ failure: RunFailure) throws(QSMError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(failure) else { throw .library("JSON", "cannot encode \(failure.identifier)") }
        try AtomicFile.write(data, to: path(failure.key, failed: true))
    }

    /// Every failure record.
    public func failures() -> [RunFailure] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/runs")) ?? []
        return names.filter { $0.hasSuffix(".failed.json") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: "\(directory)/runs/\(name)")
                .flatMap { try? JSONDecoder().decode(RunFailure.self, from: $0) }
        }
    }
}
