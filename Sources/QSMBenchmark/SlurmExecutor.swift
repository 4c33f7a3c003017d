import Foundation
import QSMCore
import QSMIO

/// Submits a plan as one Slurm job array (task i runs entry i through `qsmbench TASKCOMMAND DIR i`)
/// and, for `bench`, a collector job that runs after the whole array has ended.
public struct SlurmExecutor: Sendable {
    /// `sbatch` options.
    public var options: SlurmOptions
    /// Absolute path of the qsmbench binary the tasks run.
    public var executable: String
    /// Absolute path of the output folder.
    public var directory: String
    /// The Slurm commands.
    public var client = SlurmClient()

    /// An executor; `directory` is made absolute (tasks may start elsewhere).
    public init(options: SlurmOptions, executable: String, directory: String) {
        self.options = options
        self.executable = executable
        self.directory = Self.absolute(directory)
    }

    /// What a submission (or a dry run) produced.
    public struct Outcome: Sendable {
        /// The array script, and the collector script when there is one.
        public var scripts: [String]
        /// The array job's id (nil for a dry run).
        public var arrayJobID: String?
        /// The collector's job id (nil for a dry run or without collector).
        public var collectorJobID: String?
        /// Entry indices submitted.
        public var indices: [Int]
    }

    /// What to submit.
    public struct Work: Sendable {
        /// The plan (entries and kind); its earlier submissions are kept.
        public var plan: SlurmPlan
        /// Entries to run.
        public var indices: [Int]
        /// Task subcommand (`bench-task`).
        public var taskCommand: String
        /// Collector subcommand (`bench-collect`), nil for none.
        public var collectCommand: String?
        /// `--mem` when not given, MB.
        public var memoryMegabytes: Int
        /// `--mem` of the collector when not given, MB (nil: as a task).
        public var collectorMemoryMegabytes: Int?
        /// Job name.
        public var jobName: String
        /// A unit of work.
        public init(plan: SlurmPlan, indices: [Int], taskCommand: String, collectCommand: String?,
                    memoryMegabytes: Int, jobName: String) {
            self.plan = plan
            self.indices = indices
            self.taskCommand = taskCommand
            self.collectCommand = collectCommand
            self.memoryMegabytes = memoryMegabytes
            self.jobName = jobName
        }
    }

    /// Checks the options and paths; with `dryRun` returns the scripts and writes nothing; else writes
    /// the plan and scripts under `DIR/slurm/`, submits the array, then the collector.
    public func submit(_ work: Work, dryRun: Bool) throws(QSMError) -> Outcome {
        try preflight(dryRun: dryRun)
        guard !work.indices.isEmpty else { throw .invalidOption("--executor", "slurm: nothing to submit") }
        let generator = SlurmScript(options: options, executable: executable, directory: directory,
                                    workingDirectory: FileManager.default.currentDirectoryPath, jobName: work.jobName)
        let purpose = "qsmbench \(work.plan.toolVersion): task i runs entry i of \(SlurmPlan.path(directory: directory))"
        let arrayText = generator.array(command: work.taskCommand, indices: work.indices,
                                        memoryMegabytes: work.memoryMegabytes, purpose: purpose)
        let collectPurpose = "qsmbench \(work.plan.toolVersion): merges the results once every task has ended"
        if dryRun {
            var scripts = [arrayText]
            if let command = work.collectCommand {
                scripts.append(generator.collector(command: command, arrayJobID: "<array job id>",
                                                   memoryMegabytes: work.collectorMemoryMegabytes ?? work.memoryMegabytes,
                                                   purpose: collectPurpose))
            }
            return Outcome(scripts: scripts, arrayJobID: nil, collectorJobID: nil, indices: work.indices)
        }
        var plan = work.plan
        if let previous = try? SlurmPlan.read(directory: directory) { plan.submissions = previous.submissions }
        do {
            try FileManager.default.createDirectory(atPath: generator.logDirectory, withIntermediateDirectories: true)
        } catch {
            throw .invalidFile(generator.logDirectory, "cannot create: \(error.localizedDescription)")
        }
        try Self.writeBIDSIgnore(directory: directory, kind: plan.kind)
        // The plan is on disk before any task can start and read it.
        try plan.write(directory: directory)
        let number = plan.submissions.count + 1
        let arrayPath = "\(directory)/slurm/array-\(number).sh"
        try AtomicFile.write(Data(arrayText.utf8), to: arrayPath)
        let arrayID = try client.submit(scriptPath: arrayPath)
        var submission = SlurmPlan.Submission(arrayJobID: arrayID, collectorJobID: nil, indices: work.indices,
                                              submitted: ISO8601DateFormatter().string(from: Date()))
        var scripts = [arrayText]
        if let command = work.collectCommand {
            let text = generator.collector(command: command, arrayJobID: arrayID,
                                           memoryMegabytes: work.collectorMemoryMegabytes ?? work.memoryMegabytes,
                                           purpose: collectPurpose)
            let path = "\(directory)/slurm/collect-\(number).sh"
            scripts.append(text)
            do throws(QSMError) {
                try AtomicFile.write(Data(text.utf8), to: path)
                submission.collectorJobID = try client.submit(scriptPath: path)
            } catch {
                // The array runs anyway; record it so status and a later collect know about it.
                plan.submissions.append(submission)
                try? plan.write(directory: directory)
                throw .library("sbatch", "array job \(arrayID) was submitted but its collector was not (\(error.description)); "
                               + "run `qsmbench bench-collect \(directory)` once `qsmbench status \(directory)` shows no pending task")
            }
        }
        plan.submissions.append(submission)
        try plan.write(directory: directory)
        return Outcome(scripts: scripts, arrayJobID: arrayID, collectorJobID: submission.collectorJobID, indices: work.indices)
    }

    /// The checks `submit` makes before writing anything: options, paths, `sbatch` on PATH, and no
    /// earlier submission into the folder still active. Callers that write files of their own
    /// before submitting (the suite's copy) call it first.
    public func preflight(dryRun: Bool) throws(QSMError) {
        try options.validate()
        // #SBATCH lines split on whitespace: paths with blanks would be cut.
        for (path, option) in [(directory, "--out"), (executable, "qsmbench"),
                               (FileManager.default.currentDirectoryPath, "working directory")]
            where path.contains(where: \.isWhitespace) {
            throw .invalidOption(option, "'\(path)' contains whitespace, which #SBATCH lines cannot hold")
        }
        if dryRun { return }
        guard SlurmClient.locate("sbatch") != nil else {
            throw .invalidOption("--executor", "slurm: 'sbatch' is not on PATH; is this a Slurm login node? (scripts/slurm-local start makes a one-node cluster here)")
        }
        try refuseWhileActive()
    }

    /// Throws when an earlier submission into the folder still has tasks queued or running: two
    /// arrays writing the same results would redo work and race on the plan.
    func refuseWhileActive() throws(QSMError) {
        guard FileManager.default.fileExists(atPath: SlurmPlan.path(directory: directory)),
              let status = try? JobStatus.read(directory: directory, client: client), status.isActive else { return }
        let job = status.plan.submissions.last?.arrayJobID ?? "?"
        let waiting = status.count(.pending) + status.count(.running)
        throw .invalidOption("--out", "\(directory) has a Slurm submission still active (job \(job): \(waiting) task(s) pending or running"
                             + "\(status.collector?.isActive == true ? ", collector waiting" : "")); wait for it (qsmbench status \(directory)) or cancel it (scancel \(job))")
    }

    /// Slurm's files are not part of a BIDS derivatives dataset: tell BIDS validators to skip them.
    static func writeBIDSIgnore(directory: String, kind: SlurmPlan.Kind) throws(QSMError) {
        guard kind == .run else { return }
        let path = directory + "/.bidsignore"
        let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        guard !existing.split(separator: "\n").contains("slurm/") else { return }
        try AtomicFile.write(Data((existing + (existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n") + "slurm/\n").utf8), to: path)
    }

    /// `path` made absolute against the working directory, without `.` and `..` parts.
    public static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The running executable's absolute path (`/proc/self/exe`), else `CommandLine.arguments[0]` made absolute.
    public static func currentExecutable() -> String {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return target }
        return absolute(CommandLine.arguments[0])
    }

    /// Waits until every task and the collector of `directory`'s latest submission have ended,
    /// polling Slurm every `interval` seconds; returns the final status.
    public func wait(interval: Double = 0.5, timeout: Double? = nil) throws(QSMError) -> JobStatus {
        let start = Date()
        while true {
            let status = try JobStatus.read(directory: directory, client: client)
            if !status.isActive { return status }
            if let timeout, Date().timeIntervalSince(start) > timeout {
                throw .checkFailed(directory, "still running after \(Int(timeout)) s: \(status.summary)")
            }
            usleep(UInt32(interval * 1_000_000))
        }
    }
}
