import Foundation
import QSMCore

/// Where the work of `bench` and `run` is executed.
public enum ExecutorKind: String, Sendable, CaseIterable {
    /// In this process (`--jobs` concurrent groups).
    case local
    /// As one Slurm job array (one task per run or series) plus, for `bench`, a collector job.
    case slurm
}

/// The `sbatch` options of a Slurm submission (`--executor slurm`).
public struct SlurmOptions: Sendable, Equatable {
    /// `--partition` (nil: the cluster's default partition).
    public var partition: String?
    /// `--time` limit per task, Slurm format (`MM`, `HH:MM:SS`, `D-HH`, …); nil: the partition's default.
    public var time: String?
    /// `--mem` per task, Slurm format (`512M`, `4G`); nil: the plan's estimate.
    public var memory: String?
    /// `--cpus-per-task`; threads inside a task follow it through `SLURM_CPUS_PER_TASK`.
    public var cpusPerTask = 1
    /// Array throttle `%N`: at most this many tasks at once (nil: no throttle).
    public var maxParallel: Int?
    /// `--account`.
    public var account: String?
    /// `--qos`.
    public var qos: String?
    /// Further `sbatch` options, each written as one `#SBATCH` line (`--constraint=avx2`).
    public var extraArguments: [String] = []

    /// Default options: one CPU per task, the cluster's defaults otherwise.
    public init() {}

    /// Checks every value before anything is written or submitted; errors name the option.
    public func validate() throws(QSMError) {
        func plain(_ value: String?, _ option: String) throws(QSMError) {
            guard let value else { return }
            // Values go into `#SBATCH` lines: no spaces, quotes or line breaks that could change the script.
            guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:+,".contains($0) }) else {
                throw .invalidOption(option, "'\(value)' is not a plain Slurm name (letters, digits, - _ . : + ,)")
            }
        }
        try plain(partition, "--partition")
        try plain(account, "--account")
        try plain(qos, "--qos")
        if let time, time.isEmpty || !time.allSatisfy({ $0.isNumber || $0 == ":" || $0 == "-" }) {
            throw .invalidOption("--time", "'\(time)' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM[:SS])")
        }
        if let memory, Self.megabytes(memory) == nil {
            throw .invalidOption("--mem", "'\(memory)' is not a Slurm memory size (e.g. 800M, 4G)")
        }
        if cpusPerTask < 1 { throw .invalidOption("--cpus-per-task", "\(cpusPerTask) must be at least 1") }
        if let maxParallel, maxParallel < 1 { throw .invalidOption("--max-parallel", "\(maxParallel) must be at least 1") }
        for argument in extraArguments {
            guard argument.hasPrefix("-"), !argument.contains(where: { $0.isNewline }) else {
                throw .invalidOption("--sbatch-arg", "'\(argument)' is not an sbatch option (e.g. --constraint=avx2)")
            }
        }
    }

    /// Megabytes of a Slurm memory size (`800`, `800M`, `4G`, `1T`, `2048K`); nil when malformed.
    public static func megabytes(_ text: String) -> Int? {
        let units: [Character: Double] = ["K": 1.0 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024]
        var digits = Substring(text)
        var scale = 1.0
        if let last = text.last, let unit = units[Character(last.uppercased())] {
            scale = unit
            digits = digits.dropLast()
        }
        guard let value = Int(digits), value > 0 else { return nil }
        return Int((Double(value) * scale).rounded(.up))
    }
}

/// The batch scripts qsmbench submits: a job array whose task i runs plan entry i through qsmbench
/// itself, and a collector started when the array has ended (`afterany`).
public struct SlurmScript: Sendable {
    /// The options.
    public var options: SlurmOptions
    /// Absolute path of the qsmbench binary the tasks run.
    public var executable: String
    /// Absolute path of the output folder.
    public var directory: String
    /// Working directory of the tasks (relative paths in suites resolve as at submission).
    public var workingDirectory: String
    /// Job name (letters, digits, `-_.` kept; anything else becomes `_`).
    public var jobName: String

    /// A script generator.
    public init(options: SlurmOptions, executable: String, directory: String, workingDirectory: String, jobName: String) {
        self.options = options
        self.executable = executable
        self.directory = directory
        self.workingDirectory = workingDirectory
        self.jobName = String(jobName.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" })
    }

    /// Folder of the task logs.
    public var logDirectory: String { Self.logDirectory(of: directory) }
    /// `DIR/slurm/logs`: every task's and collector's log.
    public static func logDirectory(of directory: String) -> String { directory + "/slurm/logs" }

    /// The log of array task `index` of job `jobID` (the `%A_%a` of `array`'s `--output`).
    public static func taskLog(directory: String, jobID: String, index: Int) -> String {
        "\(logDirectory(of: directory))/\(jobID)_\(index).log"
    }

    /// The job array: `command` is the qsmbench subcommand (`bench-task`), run as
    /// `qsmbench COMMAND DIR $SLURM_ARRAY_TASK_ID`.
    public func array(command: String, indices: [Int], memoryMegabytes: Int, purpose: String) -> String {
        var lines = header(name: jobName, memoryMegabytes: memoryMegabytes)
        var array = Self.indexList(indices)
        if let throttle = options.maxParallel { array += "%\(throttle)" }
        lines.insert("#SBATCH --array=\(array)", at: 2)
        lines.insert("#SBATCH --output=\(logDirectory)/%A_%a.log", at: 3)
        lines += ["", "# \(purpose)", "exec \(Self.quoted(executable)) \(command) \(Self.quoted(directory)) \"$SLURM_ARRAY_TASK_ID\""]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The collector: runs `qsmbench COMMAND DIR` once the array job `arrayJobID` has ended, whatever
    /// its tasks' states (`afterany`), so failed or timed-out tasks are reported, not waited for.
    public func collector(command: String, arrayJobID: String, memoryMegabytes: Int, purpose: String) -> String {
        var lines = header(name: jobName + "-collect", memoryMegabytes: memoryMegabytes)
        lines.insert("#SBATCH --dependency=afterany:\(arrayJobID)", at: 2)
        lines.insert("#SBATCH --output=\(logDirectory)/collect_%j.log", at: 3)
        lines += ["", "# \(purpose)", "exec \(Self.quoted(executable)) \(command) \(Self.quoted(directory))"]
        return lines.joined(separator: "\n") + "\n"
    }

    private func header(name: String, memoryMegabytes: Int) -> [String] {
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(name)"]
        lines.append("#SBATCH --chdir=\(workingDirectory)")
        lines.append("#SBATCH --cpus-per-task=\(options.cpusPerTask)")
        lines.append("#SBATCH --mem=\(options.memory ?? "\(memoryMegabytes)M")")
        if let time = options.time { lines.append("#SBATCH --time=\(time)") }
        if let partition = options.partition { lines.append("#SBATCH --partition=\(partition)") }
        if let account = options.account { lines.append("#SBATCH --account=\(account)") }
        if let qos = options.qos { lines.append("#SBATCH --qos=\(qos)") }
        for argument in options.extraArguments { lines.append("#SBATCH \(argument)") }
        return lines
    }

    /// `0-3,7,9-11`: sorted indices with runs of consecutive values as ranges.
    public static func indexList(_ indices: [Int]) -> String {
        let sorted = Array(Set(indices)).sorted()
        var parts: [String] = []
        var start = 0
        while start < sorted.count {
            var end = start
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == start ? "\(sorted[start])" : "\(sorted[start])-\(sorted[end])")
            start = end + 1
        }
        return parts.joined(separator: ",")
    }

    /// Indices of a Slurm index list (`0-3,7,9-11%2`, also `1-9:2` steps); nil when malformed.
    public static func parseIndexList(_ text: String) -> [Int]? {
        let body = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? ""
        var out: [Int] = []
        for part in body.split(separator: ",") {
            let stepParts = part.split(separator: ":")
            let step = stepParts.count == 2 ? Int(stepParts[1]) : 1
            let bounds = stepParts[0].split(separator: "-").map { Int($0) }
            guard let step, step > 0, bounds.allSatisfy({ $0 != nil }), (1...2).contains(bounds.count) else { return nil }
            let low = bounds[0]!, high = bounds.last!!
            guard low <= high else { return nil }
            out += Array(stride(from: low, through: high, by: step))
        }
        return out.isEmpty ? nil : out
    }

    /// `text` in single quotes for bash.
    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
