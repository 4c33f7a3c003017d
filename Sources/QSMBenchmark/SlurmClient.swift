import Foundation
import QSMCore

/// The Slurm commands qsmbench calls: `sbatch` to submit, `scontrol -o show job` to read task
/// states (no `sacct`: clusters without accounting storage have none), `sinfo` to check the cluster.
public struct SlurmClient: Sendable {
    /// A client using the commands found on `PATH`.
    public init() {}

    /// How one array task (or a plain job) stands.
    public struct TaskState: Sendable, Equatable {
        /// The array job's id (the job id for a job that is not an array).
        public var arrayJobID: String
        /// The array index (nil for a plain job).
        public var index: Int?
        /// Slurm's `JobState` (`PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, `CANCELLED`, …).
        public var state: String
        /// `ExitCode` as `status:signal`.
        public var exitCode: String
        /// Slurm's `Reason` while pending (`Dependency`, `Resources`, …), else nil.
        public var reason: String?

        /// Still to run or running.
        public var isActive: Bool {
            ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "STAGE_OUT",
             "SIGNALING", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"].contains(state)
        }
    }

    /// The absolute path of `command` on `PATH`, or nil.
    public static func locate(_ command: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/\(command)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `command arguments`; returns exit status, standard output and standard error.
    static func execute(_ command: String, _ arguments: [String]) throws(QSMError) -> (status: Int32, output: String, error: String) {
        guard let executable = locate(command) else {
            throw .invalidOption("--executor", "slurm: '\(command)' is not on PATH; is this a Slurm login node? (scripts/slurm-local start makes a one-node cluster here)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        do { try process.run() } catch {
            throw .library(command, "cannot start \(executable): \(error.localizedDescription)")
        }
        // The answers are short; stderr (a line or two) cannot fill its pipe while stdout is read.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self),
                String(decoding: errorData, as: UTF8.self))
    }

    /// Submits the batch script at `scriptPath`; returns the job id. `sbatch` refusals become one
    /// line naming the qsmbench option at fault where one is recognisable.
    public func submit(scriptPath: String) throws(QSMError) -> String {
        let result = try Self.execute("sbatch", ["--parsable", scriptPath])
        guard result.status == 0 else { throw Self.submissionError(result.error, script: scriptPath) }
        // --parsable prints `jobid` or `jobid;cluster`.
        let id = result.output.split(whereSeparator: { $0 == ";" || $0.isNewline }).first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw .library("sbatch", "unexpected answer '\(result.output.trimmingCharacters(in: .whitespacesAndNewlines))' for \(scriptPath)")
        }
        return id
    }

    /// The qsmbench error for an `sbatch` refusal (its stderr).
    public static func submissionError(_ standardError: String, script: String) -> QSMError {
        let lines = standardError.split(whereSeparator: \.isNewline).map { line -> String in
            let text = String(line)
            return text.hasPrefix("sbatch: error: ") ? String(text.dropFirst(15)) : text
        }.filter { !$0.isEmpty }
        // The last line is sbatch's summary ("Batch job submission failed: …"); the first is often more specific.
        let message = lines.first { !$0.hasPrefix("Batch job submission failed") } ?? lines.last ?? "sbatch failed"
        let all = lines.joined(separator: " ").lowercased()
        let option: String? = switch true {
        case all.contains("partition"): "--partition"
        case all.contains("account"): "--account"
        case all.contains("qos"): "--qos"
        case all.contains("time limit"), all.contains("--time"): "--time"
        case all.contains("memory"): "--mem"
        case all.contains("node configuration is not available"), all.contains("processors"): "--cpus-per-task"
        default: nil
        }
        let detail = lines.count > 1 && lines.last != message ? "\(message) (\(lines.last!))" : message
        if let option { return .invalidOption(option, "sbatch refused \(script): \(detail)") }
        return .library("sbatch", "refused \(script): \(detail)")
    }

    /// Every task of job `jobID` still known to `slurmctld` (finished jobs stay for `MinJobAge`,
    /// 300 s by default); empty when the job is unknown. A pending array's unstarted tasks come as
    /// one line with an index list, expanded here.
    public func tasks(ofJob jobID: String) throws(QSMError) -> [TaskState] {
        let result = try Self.execute("scontrol", ["-o", "show", "job", jobID])
        guard result.status == 0 else {
            if result.error.contains("Invalid job id") { return [] }
            throw .library("scontrol", "show job \(jobID): \(result.error.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return Self.parseTasks(result.output)
    }

    /// Parses `scontrol -o show job` output (one job or array task per line).
    public static func parseTasks(_ text: String) -> [TaskState] {
        var out: [TaskState] = []
        for line in text.split(whereSeparator: \.isNewline) {
            var fields: [String: String] = [:]
            for token in line.split(separator: " ") {
                guard let equals = token.firstIndex(of: "=") else { continue }
                let key = String(token[..<equals])
                if fields[key] == nil { fields[key] = String(token[token.index(after: equals)...]) }
            }
            guard let jobID = fields["JobId"], let state = fields["JobState"] else { continue }
            let arrayJobID = fields["ArrayJobId"] ?? jobID
            let reason = fields["Reason"].flatMap { $0 == "None" ? nil : $0 }
            let exitCode = fields["ExitCode"] ?? "0:0"
            if let indices = fields["ArrayTaskId"] {
                for index in SlurmScript.parseIndexList(indices) ?? [] {
                    out.append(TaskState(arrayJobID: arrayJobID, index: index, state: state, exitCode: exitCode, reason: reason))
                }
            } else {
                out.append(TaskState(arrayJobID: arrayJobID, index: nil, state: state, exitCode: exitCode, reason: reason))
            }
        }
        return out
    }
}
