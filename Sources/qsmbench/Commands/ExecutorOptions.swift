import ArgumentParser
import Foundation
import QSMBenchmark
import QSMCore

/// `--executor local|slurm` and the Slurm options shared by `bench` and `run` (docs/SLURM.md).
struct ExecutorOptions: ParsableArguments {
    @Option(help: "local (this process) or slurm (one job array; see docs/SLURM.md).") var executor: String = "local"
    @Option(help: "Slurm: partition (default: the cluster's default).") var partition: String?
    @Option(help: "Slurm: time limit per task, e.g. 30:00 or 1-00:00:00 (default: the partition's).") var time: String?
    @Option(help: "Slurm: memory per task, e.g. 800M or 4G (default: the plan's estimate).") var mem: String?
    @Option(name: .customLong("cpus-per-task"), help: "Slurm: CPUs per task; threads inside a task follow it.")
    var cpusPerTask: Int = 1
    @Option(name: .customLong("max-parallel"), help: "Slurm: at most N tasks at once (array throttle %N).")
    var maxParallel: Int?
    @Option(help: "Slurm: account to charge.") var account: String?
    @Option(help: "Slurm: quality of service.") var qos: String?
    @Option(name: .customLong("sbatch-arg"), parsing: .unconditionalSingleValue,
            help: "Slurm: one more sbatch option, e.g. --sbatch-arg --constraint=avx2 (repeatable).")
    var sbatchArguments: [String] = []
    @Flag(name: .customLong("dry-run"), help: "Slurm: print the batch script(s) and submit nothing.") var dryRun = false
    @Flag(help: "Slurm: wait until every task (and the collector) has ended, then print the status.") var wait = false

    /// The executor kind, or an error naming `--executor`.
    func kind() throws(QSMError) -> ExecutorKind {
        guard let kind = ExecutorKind(rawValue: executor) else {
            throw .invalidOption("--executor", "'\(executor)' is not one of \(ExecutorKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if kind == .local {
            let slurmOnly: [(String, Bool)] = [("--partition", partition != nil), ("--time", time != nil), ("--mem", mem != nil),
                                               ("--cpus-per-task", cpusPerTask != 1), ("--max-parallel", maxParallel != nil),
                                               ("--account", account != nil), ("--qos", qos != nil),
                                               ("--sbatch-arg", !sbatchArguments.isEmpty), ("--dry-run", dryRun), ("--wait", wait)]
            if let option = slurmOnly.first(where: \.1)?.0 {
                throw .invalidOption(option, "only with --executor slurm")
            }
        }
        return kind
    }

    /// The sbatch options, checked.
    func slurmOptions() throws(QSMError) -> SlurmOptions {
        var options = SlurmOptions()
        options.partition = partition
        options.time = time
        options.memory = mem
        options.cpusPerTask = cpusPerTask
        options.maxParallel = maxParallel
        options.account = account
        options.qos = qos
        options.extraArguments = sbatchArguments
        try options.validate()
        return options
    }

    /// Prints a submission (or the dry run's scripts) and, with `--wait`, waits and prints the status.
    /// Returns the final status when waited for.
    func report(_ outcome: SlurmExecutor.Outcome, executor: SlurmExecutor, noun: String) throws(QSMError) -> JobStatus? {
        if dryRun {
            for (number, script) in outcome.scripts.enumerated() {
                if number > 0 { print("\n# ---- collector job, submitted with --dependency=afterany on the array ----") }
                print(script, terminator: "")
            }
            return nil
        }
        let directory = executor.directory
        let count = outcome.indices.count
        var line = "submitted job array \(outcome.arrayJobID!) (\(count) \(count == 1 && noun == "runs" ? "run" : noun), array "
            + "\(SlurmScript.indexList(outcome.indices))), logs in \(SlurmScript.logDirectory(of: directory))/"
        if let collector = outcome.collectorJobID { line += "; collector job \(collector) writes the results when the array has ended" }
        print(line)
        print("follow with: qsmbench status \(directory)")
        guard wait else { return nil }
        let status = try executor.wait()
        StatusCommand.printStatus(status)
        return status
    }
}

/// The memory Slurm should grant one task, MB: the plan's estimate of the working volumes plus the
/// process itself, with a margin (docs/SLURM.md, "Memory").
func taskMemoryMegabytes(volumesMiB: Double) -> Int {
    // Measured peak RSS (VmHWM, recorded in every result) of single-run tasks: 47 MiB for a 32³
    // sphere (estimate 7.8 MiB of volumes), 93-147 MiB for the quick suite's 64×78×68 head (estimate
    // 83 MiB): about 46 MiB of runtime, FFTW and HDF5, and growth within 1.2× the estimate.
    // 100 MiB + 1.5 × the estimate leaves room for both (and for allocator fragmentation).
    let megabytes = (100 + 1.5 * volumesMiB) * 1.048576
    return Int((megabytes / 10).rounded(.up)) * 10
}
