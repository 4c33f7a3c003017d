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
        return try? BenchJSON.decoder().decode(RunResult.self, from: data)
    }

    /// Saves a finished run (removing an earlier failure record).
    public func save(_ result: RunResult) throws(QSMError) {
        let encoder = BenchJSON.encoder(pretty: true)
        let data: Data
        do { data = try encoder.encode(result) } catch { throw .library("JSON", "cannot encode \(result.identifier)") }
        try AtomicFile.write(data, to: path(result.key, failed: false))
        try? FileManager.default.removeItem(atPath: path(result.key, failed: true))
    }

    /// Records a failed run.
    public func save(_ failure: RunFailure) throws(QSMError) {
        let encoder = BenchJSON.encoder(pretty: true)
        guard let data = try? encoder.encode(failure) else { throw .library("JSON", "cannot encode \(failure.identifier)") }
        try AtomicFile.write(data, to: path(failure.key, failed: true))
    }

    /// Saves χ, the truth and the evaluation mask of a run (NIfTI, gzip) for montages and results.h5.
    public func saveVolumes(key: String, chi: Volume<Float>, truth: Volume<Float>, mask: Mask) throws(QSMError) {
        let base = "\(directory)/runs/\(key)"
        try NIfTI.write(truth, to: base + ".truth.nii.gz")
        try NIfTI.write(mask, to: base + ".mask.nii.gz", datatype: .uint8)
        try NIfTI.write(chi, to: base + ".chi.nii.gz")
    }

    /// The saved χ, truth and mask of a run, if any.
    public func volumes(key: String) throws(QSMError) -> StoredVolumes? {
        let base = "\(directory)/runs/\(key)"
        guard FileManager.default.fileExists(atPath: base + ".chi.nii.gz") else { return nil }
        let mask = try NIfTI.readVolume(base + ".mask.nii.gz").map { $0 != 0 }
        return StoredVolumes(chi: try NIfTI.readVolume(base + ".chi.nii.gz"), truth: try NIfTI.readVolume(base + ".truth.nii.gz"),
                             mask: mask)
    }

    /// Removes temporary files (`.NAME.partial-PID-…`) left by a killed bench in the output folder,
    /// `runs/`, `figures/` and the scan cache; files of a live process are kept. Returns how many
    /// were removed.
    @discardableResult
    public func removeAbandonedPartials() -> Int {
        var removed = 0
        for folder in [directory, "\(directory)/runs", "\(directory)/cache/scans", "\(directory)/figures"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for name in names where name.hasPrefix(".") {
                guard let range = name.range(of: ".partial-") else { continue }
                let pid = Int32(name[range.upperBound...].prefix { $0 != "-" }) ?? 0
                // kill(pid, 0) fails with ESRCH only when no such process exists.
                let alive = pid == getpid() || (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH))
                if alive { continue }
                if (try? FileManager.default.removeItem(atPath: "\(folder)/\(name)")) != nil { removed += 1 }
            }
        }
        return removed
    }

    /// Every failure record.
    public func failures() -> [RunFailure] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/runs")) ?? []
        return names.filter { $0.hasSuffix(".failed.json") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: "\(directory)/runs/\(name)")
                .flatMap { try? BenchJSON.decoder().decode(RunFailure.self, from: $0) }
        }
    }
}

/// χ estimate, truth and evaluation mask of one run.
public struct StoredVolumes: Sendable {
    /// The pipeline's χ, ppm.
    public var chi: Volume<Float>
    /// The true χ, ppm.
    public var truth: Volume<Float>
    /// The evaluation mask.
    public var mask: Mask
    /// Bundles the three.
    public init(chi: Volume<Float>, truth: Volume<Float>, mask: Mask) {
        self.chi = chi
        self.truth = truth
        self.mask = mask
    }
}
