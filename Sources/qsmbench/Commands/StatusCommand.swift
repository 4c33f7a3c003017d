import ArgumentParser
import QSMBenchmark
import QSMCore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show done/failed/pending runs or series of a Slurm submission (bench or run --executor slurm).",
        discussion: """
            Reads OUT/slurm/plan.json, the result and failure files, and `scontrol -o show job` for tasks \
            without a result (no accounting database needed). A run is done only when its result file \
            exists. Failed entries are listed with the reason and their task log. Exit status 1 when an \
            entry failed, 0 otherwise.
            """)

    @Argument(help: "Output folder of the submission.") var directory: String
    @Flag(help: "Also list pending and running entries one per line.") var verbose = false
    @Flag(help: "First wait until no task or collector is queued or running.") var wait = false

    func run() throws {
        let client: SlurmClient? = SlurmClient.locate("scontrol") != nil ? SlurmClient() : nil
        let absolute = SlurmExecutor.absolute(directory)
        if wait, client != nil {
            _ = try SlurmExecutor(options: SlurmOptions(), executable: "", directory: absolute).wait()
        }
        let status = try JobStatus.read(directory: absolute, client: client)
        Self.printStatus(status, verbose: verbose)
        if client == nil { print("note: scontrol is not on PATH; states come from the result files only") }
        if status.count(.failed) > 0 {
            throw QSMError.checkFailed(directory, "\(status.count(.failed)) failed; resubmit them with --resume")
        }
    }

    /// The summary line, the collector's state and one line per failed (and, verbose, waiting) entry.
    static func printStatus(_ status: JobStatus, verbose: Bool = false) {
        print(status.summary)
        if let submission = status.plan.submissions.last {
            var line = "latest submission: job array \(submission.arrayJobID), \(submission.indices.count) task(s), \(submission.submitted)"
            if let collector = submission.collectorJobID {
                line += "; collector \(collector)" + (status.collector.map { ": \($0.state)" } ?? "")
            }
            print(line)
        }
        for entry in status.entries where entry.state == .failed || (verbose && entry.state != .done) {
            print(entry.line)
        }
    }
}
