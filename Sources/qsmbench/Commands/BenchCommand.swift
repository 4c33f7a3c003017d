import ArgumentParser
import Foundation
import QSMBenchmark
import QSMCore
import QSMIO

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark suite: simulate, reconstruct, score; write results.h5 and report.md.",
        discussion: """
            The suite (YAML, see docs/BENCH.md) crosses phantoms × protocols × pipelines × seeds. \
            Each finished run is saved at once under OUT/runs/, so a killed bench restarted with \
            --resume loses no finished run and redoes none. Simulated scans are kept in \
            OUT/cache/scans/ and reused by later benches into OUT (e.g. after adding pipelines). \
            Writes OUT/results.h5, OUT/results-summary.h5 (no volumes: a compare baseline), \
            OUT/report.md and a timing summary. Exit status 1 when a run failed. \
            With --executor slurm the plan goes to OUT/slurm/plan.json and ONE job array runs it \
            (task i runs run i through `qsmbench bench-task`); a collector job (afterany) writes \
            results.h5 and the report; `qsmbench status OUT` shows done/failed/pending; --resume \
            submits only missing or failed runs (docs/SLURM.md).
            """)

    @Argument(help: "Suite file (.yaml).") var suite: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Runs in parallel (the cores are split between them).") var jobs: Int = 1
    @Flag(help: "Skip runs whose results are already in the output folder.") var resume = false
    @Option(help: "Only runs matching, e.g. pipeline=tv*,seed=1.") var filter: String?
    @Flag(help: "No progress output.") var quiet = false
    @Option(help: "Threads in total (default: all cores).") var threads: Int?
    @OptionGroup var execution: ExecutorOptions

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs: \(jobs) must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads: \(threads) must be at least 1") }
    }

    func run() throws {
        if let threads { Parallelism.threadCount = threads }
        let suite = try Suite.read(self.suite)
        let runner = BenchmarkRunner(suite: suite, directory: out, jobs: jobs, resume: resume,
                                     filter: try filter.map { try RunFilter($0) }, toolVersion: QSMBenchVersion.string)
        if try execution.kind() == .slurm { return try submit(suite: suite, runner: runner) }
        let plan = try runner.plan()
        if !quiet {
            print("suite \(suite.name): \(plan.runs.count) runs (\(suite.phantoms.count) phantoms × \(suite.protocols.count) "
                  + "protocols × \(suite.pipelines.count) pipelines × \(suite.seeds.count) seeds), "
                  + "\(plan.finished) already finished, \(plan.scans) scans to simulate, "
                  + "about \(Int(plan.memoryMiB.rounded())) MiB with \(jobs) job(s)")
        }
        let progress = ProgressPrinter(enabled: !quiet)
        let (failures, timing) = try runner.runTimed { done, total, message in progress.update(done, total, message) }
        progress.finish()
        let writeStart = now()
        try BenchOutput.write(runner: runner, suite: suite, failures: failures,
                              commandLine: CommandLine.arguments.joined(separator: " "))
        let writing = now() - writeStart
        if !quiet {
            print("wrote \(out)/results.h5, \(out)/results-summary.h5 and \(out)/report.md")
            print(BenchOutput.timingSummary(timing, writingMilliseconds: writing, jobs: jobs))
        }
        if !failures.isEmpty {
            throw QSMError.checkFailed(suite.name, "\(failures.count) run(s) failed; see \(out)/report.md")
        }
    }
}

extension BenchCommand {
    /// `--executor slurm`: writes the plan, submits one array over the runs to do and a collector.
    func submit(suite: Suite, runner: BenchmarkRunner) throws {
        let options = try execution.slurmOptions()
        if jobs != 1 { throw QSMError.invalidOption("--jobs", "not used with --executor slurm (see --max-parallel)") }
        if threads != nil { throw QSMError.invalidOption("--threads", "not used with --executor slurm (see --cpus-per-task)") }
        let plan = try runner.plan()
        let executor = try runner.executor
        let slurm = SlurmExecutor(options: options, executable: SlurmExecutor.currentExecutable(), directory: out)
        var slurmPlan = SlurmPlan(kind: .bench, toolVersion: QSMBenchVersion.string,
                                  entries: plan.runs.map { SlurmPlan.Entry(identifier: $0.identifier, key: executor.key($0)) })
        let indices = slurmPlan.entries.indices.filter { !resume || !slurmPlan.isDone(slurmPlan.entries[$0], directory: slurm.directory) }
        if !quiet && !execution.dryRun {
            print("suite \(suite.name): \(plan.runs.count) runs, \(plan.runs.count - indices.count) already finished, "
                  + "\(indices.count) to submit")
        }
        if indices.isEmpty {
            // Nothing to submit: write the results here, as the collector would.
            let failures = try ResultStore(directory: out).failures()
            try BenchOutput.write(runner: runner, suite: suite, failures: failures, commandLine: CommandLine.arguments.joined(separator: " "))
            if !quiet { print("every run is finished; wrote \(out)/results.h5 and \(out)/report.md") }
            return
        }
        try slurm.preflight(dryRun: execution.dryRun)
        slurmPlan.suiteFile = self.suite
        slurmPlan.filter = filter
        let copy = "\(slurm.directory)/slurm/suite/\(URL(fileURLWithPath: self.suite).lastPathComponent)"
        slurmPlan.suiteCopy = copy
        if !execution.dryRun {
            // The tasks read a copy: editing the suite while the array waits cannot change what it runs.
            let text: Data
            do { text = try Data(contentsOf: URL(fileURLWithPath: self.suite)) } catch {
                throw QSMError.invalidFile(self.suite, "cannot read: \(error.localizedDescription)")
            }
            try AtomicFile.write(text, to: copy)
        }
        var work = SlurmExecutor.Work(plan: slurmPlan, indices: indices, taskCommand: "bench-task", collectCommand: "bench-collect",
                                      memoryMegabytes: taskMemoryMegabytes(volumesMiB: plan.groupMemoryMiB),
                                      jobName: "qsmbench-\(suite.name)")
        // The collector holds χ, truth and mask of every run that keeps its volumes while writing results.h5.
        let kept = plan.runs.filter { suite.saveVolumes || $0.seed == suite.seeds.first }
        let keptMiB = kept.reduce(0.0) { $0 + Double($1.phantom.matrix.x * $1.phantom.matrix.y * $1.phantom.matrix.z) * 4 * 3 } / 1_048_576
        work.collectorMemoryMegabytes = taskMemoryMegabytes(volumesMiB: plan.groupMemoryMiB + keptMiB)
        let outcome = try slurm.submit(work, dryRun: execution.dryRun)
        if let status = try execution.report(outcome, executor: slurm, noun: "runs"), status.count(.failed) > 0 {
            throw QSMError.checkFailed(suite.name, "\(status.count(.failed)) run(s) failed; resubmit them with --resume")
        }
    }
}

/// Writes results.h5 and report.md for a runner's saved results.
enum BenchOutput {
    static func write(runner: BenchmarkRunner, suite: Suite, failures: [RunFailure], commandLine: String) throws(QSMError) {
        let results = try runner.results()
        let store = try ResultStore(directory: runner.directory)
        var volumes: [String: StoredVolumes] = [:]
        for result in results { if let v = try store.volumes(key: result.key) { volumes[result.key] = v } }
        let provenance = Provenance.current(commandLine: commandLine)
        try ResultsFile.write(results, suite: suite, to: runner.directory + "/results.h5", provenance: provenance,
                              volumes: volumes)
        // The same without volumes: small enough to commit as a regression baseline.
        try ResultsFile.write(results, suite: suite, to: runner.directory + "/results-summary.h5", provenance: provenance)
        try BenchReport(results: results, failures: store.failures(), suiteName: suite.name, provenance: provenance,
                        volumes: { volumes[$0] }).write(to: runner.directory)
    }
}

extension BenchOutput {
    /// One line: wall time, peak memory, and the share of worker time outside the algorithms.
    static func timingSummary(_ timing: BenchmarkRunner.Timing, writingMilliseconds: Double, jobs: Int) -> String {
        let wall = timing.wallMilliseconds + writingMilliseconds
        // Writing results.h5 and the report happens once, outside the workers: count it as overhead.
        let worker = timing.workerMilliseconds + writingMilliseconds
        let outside = worker > 0 ? max(0, 1 - timing.algorithmMilliseconds / worker) : 0
        func seconds(_ ms: Double) -> String { String(format: "%.1f s", ms / 1000) }
        return "timing: wall \(seconds(wall)) with \(jobs) job(s), peak memory \(Int(peakResidentMemoryMiB().rounded())) MiB; "
            + "worker time \(seconds(worker)): pipelines \(seconds(timing.algorithmMilliseconds)), "
            + "simulation \(seconds(timing.simulationMilliseconds)) (\(timing.simulated) scans, \(timing.loaded) from cache), "
            + "scan cache I/O \(seconds(timing.cacheMilliseconds)), results and report \(seconds(writingMilliseconds)); "
            + String(format: "%.1f %% outside the algorithms", outside * 100)
    }
}

/// Tool version, command line, machine and date, recorded in results and reports.
enum Provenance {
    static func current(commandLine: String) -> [String: String] {
        var info = utsname()
        uname(&info)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return ["tool_version": "qsmbench \(QSMBenchVersion.string)", "command_line": commandLine,
                "machine": "\(text(info.sysname)) \(text(info.release)) \(text(info.machine)), "
                    + "\(ProcessInfo.processInfo.activeProcessorCount) cores",
                "created": ISO8601DateFormatter().string(from: Date())]
    }
}

/// A progress bar with ETA on a terminal, plain lines otherwise.
final class ProgressPrinter: Sendable {
    private let enabled: Bool
    private let terminal = isatty(1) != 0
    private let start = now()

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ done: Int, _ total: Int, _ message: String) {
        guard enabled else { return }
        let elapsed = (now() - start) / 1000
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        if terminal {
            let width = 30, filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            print("\r[\(bar)] \(done)/\(total) ETA \(Int(eta)) s  \(message.prefix(60))", terminator: "")
            fflush(nil)
        } else {
            print("[\(done)/\(total)] \(message)")
        }
    }

    func finish() { if enabled && terminal { print("") } }
}
