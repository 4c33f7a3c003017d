import Foundation
import QSMIO

/// The plan of a Slurm execution, `DIR/slurm/plan.json`: one entry per run (`bench`) or series
/// (`run`); array task i runs entry i. Also records every submission, so `status`, the collector
/// and `--resume` know which job ran which entry.
public struct SlurmPlan: Codable, Sendable {
    /// What the entries are.
    public enum Kind: String, Codable, Sendable {
        /// Benchmark runs; an entry's key is the run's content key (`DIR/runs/<key>.json`).
        case bench
        /// BIDS series; an entry's key is the χ map's path relative to DIR.
        case run
    }

    /// One unit of work.
    public struct Entry: Codable, Sendable, Equatable {
        /// Run identifier (`phantom/protocol/pipeline/seed-N`) or series base name (`sub-01_ses-1`).
        public var identifier: String
        /// Content key (bench) or χ map path relative to DIR (run).
        public var key: String
        /// An entry.
        public init(identifier: String, key: String) {
            self.identifier = identifier
            self.key = key
        }
    }

    /// One `sbatch` of an array (and its collector).
    public struct Submission: Codable, Sendable {
        /// The array job's id.
        public var arrayJobID: String
        /// The collector's job id (bench), nil for `run`.
        public var collectorJobID: String?
        /// Entry indices the array ran.
        public var indices: [Int]
        /// Submission date (ISO 8601, UTC).
        public var submitted: String
        /// A submission record.
        public init(arrayJobID: String, collectorJobID: String?, indices: [Int], submitted: String) {
            self.arrayJobID = arrayJobID
            self.collectorJobID = collectorJobID
            self.indices = indices
            self.submitted = submitted
        }
    }

    /// Bench or run.
    public var kind: Kind
    /// qsmbench version that wrote the plan.
    public var toolVersion: String
    /// Bench: the copy of the suite the tasks read (so editing the original cannot change a running array).
    public var suiteCopy: String?
    /// Bench: the suite file as given on the command line (recorded in results).
    public var suiteFile: String?
    /// Bench: the `--filter` expression.
    public var filter: String?
    /// Run: the `run` command's arguments without the executor options; each task parses them again.
    public var arguments: [String]?
    /// Work items; task i runs `entries[i]`.
    public var entries: [Entry]
    /// Submissions, oldest first.
    public var submissions: [Submission] = []

    /// A plan without submissions.
    public init(kind: Kind, toolVersion: String, entries: [Entry]) {
        self.kind = kind
        self.toolVersion = toolVersion
        self.entries = entries
    }

    /// `DIR/slurm/plan.json`.
    public static func path(directory: String) -> String { directory + "/slurm/plan.json" }

    /// Reads the plan of `directory`.
    public static func read(directory: String) throws(QSMError) -> SlurmPlan {
        let path = path(directory: directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidFile(path, "no Slurm plan here (was DIR submitted with --executor slurm?)")
        }
        do { return try BenchJSON.decoder().decode(SlurmPlan.self, from: data) } catch {
            throw .invalidFile(path, "not a qsmbench Slurm plan: \(error.localizedDescription)")
        }
    }

    /// Writes the plan atomically (tasks may be reading it).
    public func write(directory: String) throws(QSMError) {
        let data: Data
        do { data = try BenchJSON.encoder(pretty: true).encode(self) } catch { throw .library("JSON", "cannot encode the Slurm plan") }
        try AtomicFile.write(data, to: Self.path(directory: directory))
    }

    /// The entry of array task `index`, or an error naming the plan.
    public func entry(_ index: Int, directory: String) throws(QSMError) -> Entry {
        guard entries.indices.contains(index) else {
            throw .invalidOption("INDEX", "\(index) is outside the plan's 0…\(entries.count - 1) (\(Self.path(directory: directory)))")
        }
        return entries[index]
    }

    /// The latest submission that ran entry `index`.
    public func submission(of index: Int) -> Submission? {
        submissions.last { $0.indices.contains(index) }
    }

    /// The file whose presence means entry `index` finished.
    public func resultPath(of entry: Entry, directory: String) -> String {
        switch kind {
        case .bench: "\(directory)/runs/\(entry.key).json"
        case .run: "\(directory)/\(entry.key)"
        }
    }

    /// The failure record a task leaves when its run or series failed.
    public func failurePath(of entry: Entry, directory: String) -> String {
        switch kind {
        case .bench: "\(directory)/runs/\(entry.key).failed.json"
        case .run: "\(directory)/slurm/failures/\(entry.identifier).json"
        }
    }

    /// Whether `entry` has its result (a regular file: results are renamed into place whole).
    public func isDone(_ entry: Entry, directory: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: resultPath(of: entry, directory: directory), isDirectory: &isDirectory)
            && !isDirectory.boolValue
    }

    /// The failure message a task recorded for `entry`, if any.
    public func recordedFailure(of entry: Entry, directory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: failurePath(of: entry, directory: directory)) else { return nil }
        return (try? BenchJSON.decoder().decode(RunFailure.self, from: data))?.message
    }

    /// Records a failure of `entry` (run tasks; bench tasks record through `ResultStore`).
    public func recordFailure(of entry: Entry, message: String, directory: String) throws(QSMError) {
        let failure = RunFailure(identifier: entry.identifier, key: entry.key, message: message)
        guard let data = try? BenchJSON.encoder(pretty: true).encode(failure) else { throw .library("JSON", "cannot encode a failure") }
        try AtomicFile.write(data, to: failurePath(of: entry, directory: directory))
    }

    /// Removes the failure record of `entry` after it succeeded.
    public func clearFailure(of entry: Entry, directory: String) {
        try? FileManager.default.removeItem(atPath: failurePath(of: entry, directory: directory))
    }
}
