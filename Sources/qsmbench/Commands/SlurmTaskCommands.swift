import ArgumentParser
import Foundation
import QSMBenchmark
import QSMCore

#if canImport(Glibc)
import Glibc
#endif

/// Prints a line at once: a task log keeps stdout and stderr lines in order and can be followed.
private func logLine(_ text: String) {
    print(text)
    fflush(nil)
}

/// Hostname and Slurm ids for the first line of a task log.
private func taskBanner(_ what: String) -> String {
    let environment = ProcessInfo.processInfo.environment
    let job = environment["SLURM_ARRAY_JOB_ID"].map { "job \($0)_\(environment["SLURM_ARRAY_TASK_ID"] ?? "?")" }
        ?? environment["SLURM_JOB_ID"].map { "job \($0)" } ?? "outside Slurm"
    return "qsmbench \(QSMBenchVersion.string) \(what) on \(ProcessInfo.processInfo.hostName), \(job), "
        + "\(Parallelism.threadCount) thread(s)"
}

struct BenchTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-task",
        abstract: "Run entry INDEX of a Slurm bench plan (what each array task runs).",
        shouldDisplay: false)

    @Argument(help: "Output folder holding slurm/plan.json.") var directory: String
    @Argument(help: "Entry index (SLURM_ARRAY_TASK_ID).") var index: Int

    func run() throws {
        let plan = try SlurmPlan.read(directory: directory)
        guard plan.kind == .bench, let copy = plan.suiteCopy else {
            throw QSMError.invalidFile(SlurmPlan.path(directory: directory), "is not a bench plan")
        }
        let entry = try plan.entry(index, directory: directory)
        logLine(taskBanner("bench-task \(index): \(entry.identifier)"))
        var suite = try Suite.read(copy)
        suite.file = plan.suiteFile ?? suite.file
        var runner = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: false, filter: nil,
                                     toolVersion: QSMBenchVersion.string)
        runner.identifiers = [entry.identifier]
        runner.removesAbandonedPartials = false
        let runs = runner.selectedRuns
        let executor = try runner.executor
        guard runs.count == 1, executor.key(runs[0]) == entry.key else {
            throw QSMError.invalidFile(SlurmPlan.path(directory: directory),
                                       "entry \(index) (\(entry.identifier)) no longer matches \(copy) or this qsmbench version")
        }
        let (failures, timing) = try runner.runTimed { _, _, message in logLine(message) }
        if let failure = failures.first {
            throw QSMError.checkFailed(entry.identifier, failure.message)
        }
        logLine(String(format: "done in %.1f s (pipelines %.1f s, simulation %.1f s, %@)", timing.wallMilliseconds / 1000,
                     timing.algorithmMilliseconds / 1000, timing.simulationMilliseconds / 1000,
                     timing.loaded > 0 ? "scan from the cache" : "scan simulated"))
    }
}

struct BenchCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-collect",
        abstract: "Merge a Slurm bench's results into results.h5 and write the report (the collector job).",
        shouldDisplay: false)

    @Argument(help: "Output folder holding slurm/plan.json.") var directory: String

    func run() throws {
        let plan = try SlurmPlan.read(directory: directory)
        guard plan.kind == .bench, let copy = plan.suiteCopy else {
            throw QSMError.invalidFile(SlurmPlan.path(directory: directory), "is not a bench plan")
        }
        logLine(taskBanner("bench-collect"))
        var suite = try Suite.read(copy)
        suite.file = plan.suiteFile ?? suite.file
        let runner = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: true,
                                     filter: try plan.filter.map { try RunFilter($0) }, toolVersion: QSMBenchVersion.string)
        let client: SlurmClient? = SlurmClient.locate("scontrol") != nil ? SlurmClient() : nil
        let status = try JobStatus.read(directory: directory, client: client)
        let store = try ResultStore(directory: directory)
        // Every task has ended (afterany) and no other submission runs (refused while one is active):
        // temporary files left now are abandoned, also those of processes on other nodes.
        store.removeAbandonedPartials()
        // A task killed by Slurm (time limit, memory, node failure) could not record its failure: do it
        // here, with Slurm's end state and the log, so the report lists it and --resume redoes it.
        for entry in status.entries where entry.state == .failed
            && plan.recordedFailure(of: plan.entries[entry.index], directory: directory) == nil {
            let message = (entry.detail ?? "no result") + (entry.log.map { "; log \($0)" } ?? "")
            try plan.recordFailure(of: plan.entries[entry.index], message: message, directory: directory)
        }
        let failures = status.entries.filter { $0.state == .failed }
        let recorded = store.failures().filter { failure in failures.contains { plan.entries[$0.index].key == failure.key } }
        try BenchOutput.write(runner: runner, suite: suite, failures: recorded,
                              commandLine: "qsmbench bench \(plan.suiteFile ?? copy) --out \(directory) --executor slurm")
        print("wrote \(directory)/results.h5, \(directory)/results-summary.h5 and \(directory)/report.md")
        StatusCommand.printStatus(status)
        if !failures.isEmpty {
            // Exit 0 all the same: the collector's own job state says whether the merge worked;
            // the runs' failures are in the report and in `qsmbench status`.
            logLine("\(failures.count) run(s) failed; resubmit them with "
                    + "`qsmbench bench \(plan.suiteFile ?? copy) --out \(directory) --executor slurm --resume`")
        }
    }
}

struct RunTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-task",
        abstract: "Reconstruct series INDEX of a Slurm run plan (what each array task runs).",
        shouldDisplay: false)

    @Argument(help: "Output folder holding slurm/plan.json.") var directory: String
    @Argument(help: "Entry index (SLURM_ARRAY_TASK_ID).") var index: Int

    func run() throws {
        let plan = try SlurmPlan.read(directory: directory)
        guard plan.kind == .run, let arguments = plan.arguments else {
            throw QSMError.invalidFile(SlurmPlan.path(directory: directory), "is not a run plan")
        }
        let entry = try plan.entry(index, directory: directory)
        logLine(taskBanner("run-task \(index): \(entry.identifier)"))
        let command: RunCommand
        do { command = try RunCommand.parse(arguments) } catch {
            throw QSMError.invalidFile(SlurmPlan.path(directory: directory), "arguments no longer parse: \(RunCommand.message(for: error))")
        }
        do {
            let summary = try command.reconstructSeries(named: entry.identifier)
            plan.clearFailure(of: entry, directory: directory)
            logLine(summary)
        } catch {
            try plan.recordFailure(of: entry, message: error.description, directory: directory)
            throw error
        }
    }
}
