import Foundation
import QSMCore

/// Where each entry of a Slurm plan stands, from its result and failure files first and from
/// `scontrol` for tasks still known to Slurm: a result file is the only proof of a finished entry.
public struct JobStatus: Sendable {
    /// The state of one entry.
    public enum State: String, Sendable, CaseIterable {
        /// Its result exists.
        case done
        /// It ran and has no result (failed, timed out, cancelled, node failure, or lost).
        case failed
        /// Its task is running.
        case running
        /// Its task waits in the queue.
        case pending
        /// Never submitted (e.g. a filter added entries, or `--dry-run`).
        case notSubmitted = "not submitted"
    }

    /// One entry's state.
    public struct Entry: Sendable {
        /// Array index.
        public var index: Int
        /// Run identifier or series name.
        public var identifier: String
        /// State.
        public var state: State
        /// Why it failed (the task's own message, or Slurm's end state), nil otherwise.
        public var detail: String?
        /// Its latest task log, if it was submitted.
        public var log: String?

        /// `failed: sphere/p/tv/seed-3: <detail>; log DIR/slurm/logs/17_5.log`.
        public var line: String {
            var text = "\(state.rawValue): \(identifier)"
            if let detail { text += ": \(detail)" }
            // The collector's failure records already name the log.
            if let log, !(detail?.contains(log) ?? false) { text += "; log \(log)" }
            return text
        }
    }

    /// The plan.
    public var plan: SlurmPlan
    /// Every entry, in plan order.
    public var entries: [Entry]
    /// The latest collector job's state, if any is known to Slurm.
    public var collector: SlurmClient.TaskState?

    /// Reads the status of `directory`'s plan; Slurm is asked only about submissions whose entries
    /// lack a result. `client` nil: results and failure records only (no Slurm on this machine).
    public static func read(directory: String, client: SlurmClient?) throws(QSMError) -> JobStatus {
        let plan = try SlurmPlan.read(directory: directory)
        var tasks: [String: [Int: SlurmClient.TaskState]] = [:]
        // A controller that does not answer is an error, not "every task vanished".
        func task(_ jobID: String, _ index: Int) throws(QSMError) -> SlurmClient.TaskState? {
            guard let client else { return nil }
            if tasks[jobID] == nil {
                let known = try client.tasks(ofJob: jobID)
                tasks[jobID] = Dictionary(known.compactMap { state in state.index.map { ($0, state) } }, uniquingKeysWith: { a, _ in a })
            }
            return tasks[jobID]?[index]
        }
        var entries: [Entry] = []
        for (index, entry) in plan.entries.enumerated() {
            let submission = plan.submission(of: index)
            let log = submission.map { SlurmScript.taskLog(directory: directory, jobID: $0.arrayJobID, index: index) }
            if plan.isDone(entry, directory: directory) {
                entries.append(Entry(index: index, identifier: entry.identifier, state: .done, detail: nil, log: nil))
                continue
            }
            guard let submission else {
                let detail = plan.recordedFailure(of: entry, directory: directory)
                entries.append(Entry(index: index, identifier: entry.identifier, state: detail == nil ? .notSubmitted : .failed,
                                     detail: detail, log: nil))
                continue
            }
            let slurm = try task(submission.arrayJobID, index)
            if let slurm, slurm.isActive {
                let state: State = slurm.state == "PENDING" ? .pending : .running
                entries.append(Entry(index: index, identifier: entry.identifier, state: state,
                                     detail: state == .pending ? slurm.reason.map { "waiting: \($0)" } : nil, log: log))
            } else if let message = plan.recordedFailure(of: entry, directory: directory) {
                entries.append(Entry(index: index, identifier: entry.identifier, state: .failed, detail: message, log: log))
            } else if let slurm {
                let hint = ["TIMEOUT": "; give more --time", "OUT_OF_MEMORY": "; give more --mem",
                            "NODE_FAIL": "; resubmit with --resume", "PREEMPTED": "; resubmit with --resume"][slurm.state] ?? ""
                let detail = "task \(index) of job \(submission.arrayJobID) ended \(slurm.state) (exit \(slurm.exitCode)) without a result" + hint
                entries.append(Entry(index: index, identifier: entry.identifier, state: .failed, detail: detail, log: log))
            } else if client == nil {
                entries.append(Entry(index: index, identifier: entry.identifier, state: .pending,
                                     detail: "no result yet; Slurm was not asked", log: log))
            } else {
                let detail = "task \(index) of job \(submission.arrayJobID) left no result and is no longer known to Slurm"
                entries.append(Entry(index: index, identifier: entry.identifier, state: .failed, detail: detail, log: log))
            }
        }
        var collector: SlurmClient.TaskState?
        if let client, let id = plan.submissions.last?.collectorJobID {
            collector = try client.tasks(ofJob: id).first
        }
        return JobStatus(plan: plan, entries: entries, collector: collector)
    }

    /// Entries in `state`.
    public func count(_ state: State) -> Int { entries.filter { $0.state == state }.count }

    /// Whether any task or the collector is still queued or running.
    public var isActive: Bool {
        entries.contains { $0.state == .pending || $0.state == .running } || (collector?.isActive ?? false)
    }

    /// `12 runs: 10 done, 1 failed, 1 pending`.
    public var summary: String {
        let noun = plan.kind == .bench ? "runs" : "series"
        let counts = State.allCases.compactMap { state -> String? in
            let n = count(state)
            return n > 0 || state == .done ? "\(n) \(state.rawValue)" : nil
        }
        return "\(entries.count) \(noun): " + counts.joined(separator: ", ")
    }
}
