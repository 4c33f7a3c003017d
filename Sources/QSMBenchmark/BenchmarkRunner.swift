import Dispatch
import Foundation
import QSMIO
import QSMMetrics
import QSMPhantom
import Synchronization

/// Runs a suite: plans, skips finished runs (`resume`), executes the rest in parallel groups that
/// share a simulated scan, saves each result as it finishes, and reports progress.
public struct BenchmarkRunner: Sendable {
    /// The suite.
    public var suite: Suite
    /// Output folder.
    public var directory: String
    /// Concurrent runs (each group of runs sharing a scan runs on one worker).
    public var jobs: Int
    /// Skip runs whose result is already saved.
    public var resume: Bool
    /// Only runs matching this filter.
    public var filter: RunFilter?
    /// Only runs with these identifiers (a Slurm array task runs one); nil: every run the filter selects.
    public var identifiers: Set<String>?
    /// qsmbench version.
    public var toolVersion: String
    /// Keep simulated scans in `DIR/cache/scans` and load them instead of simulating again.
    public var cacheScans = true
    /// Remove temporary files of dead processes at the start. Off in Slurm tasks: a process on
    /// another node is not visible here, so its live temporary files would look abandoned.
    public var removesAbandonedPartials = true
    /// Called with the run identifier each time a scan is simulated (not loaded from the cache).
    public var onSimulate: (@Sendable (String) -> Void)?

    /// A runner.
    public init(suite: Suite, directory: String, jobs: Int, resume: Bool, filter: RunFilter?, toolVersion: String) {
        self.suite = suite
        self.directory = directory
        self.jobs = max(1, jobs)
        self.resume = resume
        self.filter = filter
        self.toolVersion = toolVersion
    }

    /// What will run.
    public struct Plan: Sendable {
        /// Runs selected by the filter.
        public var runs: [RunSpec]
        /// Of those, runs already finished (skipped with `resume`).
        public var finished: Int
        /// Distinct simulated scans needed by the unfinished runs.
        public var scans: Int
        /// Estimated peak memory, MiB, for `jobs` concurrent groups.
        public var memoryMiB: Double
        /// Estimated peak memory of one group (one Slurm task), MiB, without the process itself.
        public var groupMemoryMiB: Double
    }

    /// The runs the filter and the identifier list select, in suite order.
    public var selectedRuns: [RunSpec] {
        suite.runs.filter { (filter?.matches($0) ?? true) && (identifiers?.contains($0.identifier) ?? true) }
    }

    /// The executor for this suite.
    public var executor: RunExecutor {
        get throws(QSMError) {
            guard let convention = MetricConvention(rawValue: suite.convention) else {
                throw .invalidFile(suite.file, "convention: '\(suite.convention)' is not one of \(MetricConvention.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return RunExecutor(convention: convention, attribution: suite.attribution, toolVersion: toolVersion)
        }
    }

    /// Validates every pipeline and phantom option and computes the plan; nothing is written.
    public func plan() throws(QSMError) -> Plan {
        let executor = try self.executor
        for pipeline in suite.pipelines { _ = try RunExecutor.configuration(pipeline, file: suite.file) }
        for phantom in suite.phantoms { try PhantomCatalog.validate(phantom) }
        let runs = selectedRuns
        guard !runs.isEmpty else { throw .invalidOption("--filter", "no run of \(suite.file) matches") }
        let store = try ResultStore(directory: directory)
        let finished = resume ? runs.filter { store.result(for: executor.key($0)) != nil }.count : 0
        let pending = runs.filter { !resume || store.result(for: executor.key($0)) == nil }
        let scans = Set(pending.map { executor.scanKey($0) }).count
        // Per concurrent group: the scan (echoes × 2 frames + ~10 truth/intermediate volumes) and ~30
        // working volumes of the padded pipeline, Float32; the forward model pads to 2N (8× voxels).
        let largest = suite.phantoms.map { Double($0.matrix.x * $0.matrix.y * $0.matrix.z) }.max() ?? 0
        let echoes = Double(suite.protocols.map(\.echoTimes.count).max() ?? 1)
        let perGroup = largest * 4 * (2 * echoes + 10 + 30 + 8 * 2) / 1_048_576
        return Plan(runs: runs, finished: finished, scans: scans, memoryMiB: perGroup * Double(min(jobs, max(1, scans))),
                    groupMemoryMiB: perGroup)
    }

    /// Where a bench's time went: the whole wall time and the worker time inside the pipelines.
    public struct Timing: Sendable {
        /// Wall time of `run`, ms.
        public var wallMilliseconds = 0.0
        /// Worker time summed over concurrent jobs (simulation, cache, pipelines, scoring, saving), ms.
        public var workerMilliseconds = 0.0
        /// Time inside the pipelines (including attribution runs), summed over jobs, ms.
        public var algorithmMilliseconds = 0.0
        /// Time simulating scans, summed over jobs, ms.
        public var simulationMilliseconds = 0.0
        /// Time reading and writing the scan cache, summed over jobs, ms.
        public var cacheMilliseconds = 0.0
        /// Scans simulated and scans loaded from the cache.
        public var simulated = 0, loaded = 0
        /// Share of worker time outside the algorithms (simulation, scoring, I/O), 0–1.
        public var overheadShare: Double {
            workerMilliseconds > 0 ? max(0, 1 - algorithmMilliseconds / workerMilliseconds) : 0
        }
    }

    /// Runs the plan; `progress(done, total, message)` is called after each run. Returns the failures.
    public func run(progress: @Sendable (Int, Int, String) -> Void) throws(QSMError) -> [RunFailure] {
        try runTimed(progress: progress).failures
    }

    /// Runs the plan like `run` and also returns where the time went.
    public func runTimed(progress: @Sendable (Int, Int, String) -> Void) throws(QSMError)
        -> (failures: [RunFailure], timing: Timing) {
        let start = now()
        let executor = try self.executor
        let plan = try self.plan()
        let store = try ResultStore(directory: directory)
        if removesAbandonedPartials { store.removeAbandonedPartials() }
        let pending = plan.runs.filter { !resume || store.result(for: executor.key($0)) == nil }
        // Group runs by scan, keeping suite order.
        var order: [RunExecutor.ScanKey] = []
        var groups: [RunExecutor.ScanKey: [RunSpec]] = [:]
        for run in pending {
            let key = executor.scanKey(run)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(run)
        }
        let work = order.map { groups[$0]! }
        let total = pending.count
        let next = Atomic<Int>(0), done = Atomic<Int>(0)
        let failures = Mutex<[RunFailure]>([])
        let storeError = Mutex<QSMError?>(nil)
        let timing = Mutex(Timing())
        let cache = ScanCache(benchDirectory: directory)
        let workers = min(jobs, max(1, work.count))
        // Split the cores between concurrent runs so FFTs and loops do not oversubscribe.
        let savedThreads = Parallelism.threadCount
        Parallelism.threadCount = max(1, savedThreads / workers)
        defer { Parallelism.threadCount = savedThreads }

        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < work.count else { return }
                let group = work[index]
                let t0 = now()
                var scan: BenchScan?
                var scanError: QSMError?
                let scanKey = executor.scanKeyText(group[0])
                var simulation = 0.0, cacheTime = 0.0
                if cacheScans, let cached = cache.load(key: scanKey) {
                    scan = cached
                    cacheTime = now() - t0
                } else {
                    onSimulate?(group[0].identifier)
                    do throws(QSMError) { scan = BenchScan(try executor.simulate(group[0])) } catch { scanError = error }
                    simulation = now() - t0
                    if cacheScans, let scan {
                        let t1 = now()
                        // A cache that cannot be written costs only speed on the next bench, not results.
                        try? cache.save(scan, key: scanKey)
                        cacheTime = now() - t1
                    }
                }
                var algorithm = 0.0
                for (position, run) in group.enumerated() {
                    let key = executor.key(run)
                    var message: String
                    do throws(QSMError) {
                        guard let scan else { throw scanError! }
                        // χ of the first seed of each phantom/protocol/pipeline is kept for the montages.
                        let keep = run.seed == suite.seeds.first || suite.saveVolumes
                        let (result, chi) = try executor.execute(run, scan: scan, keepVolume: keep,
                                                                 simulationMilliseconds: position == 0 ? simulation : 0)
                        if let chi { try store.saveVolumes(key: key, chi: chi, truth: scan.localChi, mask: scan.mask) }
                        try store.save(result)
                        algorithm += result.algorithmMilliseconds ?? 0
                        message = "\(run.identifier): nrmse \(Self.format(result.scores.nrmse)) %"
                    } catch {
                        message = "\(run.identifier): failed: \(error.description)"
                        let failure = RunFailure(identifier: run.identifier, key: key, message: error.description)
                        failures.withLock { $0.append(failure) }
                        do throws(QSMError) { try store.save(failure) } catch { storeError.withLock { $0 = error } }
                    }
                    let finished = done.add(1, ordering: .relaxed).newValue
                    progress(finished, total, message)
                }
                let busy = now() - t0
                timing.withLock {
                    $0.workerMilliseconds += busy
                    $0.algorithmMilliseconds += algorithm
                    $0.simulationMilliseconds += simulation
                    $0.cacheMilliseconds += cacheTime
                    if simulation > 0 { $0.simulated += 1 } else if scan != nil { $0.loaded += 1 }
                }
            }
        }
        if let error = storeError.withLock({ $0 }) { throw error }
        var summary = timing.withLock { $0 }
        summary.wallMilliseconds = now() - start
        return (failures.withLock { $0 }, summary)
    }

    /// Every saved result of the selected runs, in suite order.
    public func results() throws(QSMError) -> [RunResult] {
        let executor = try self.executor
        let store = try ResultStore(directory: directory)
        return selectedRuns.compactMap { store.result(for: executor.key($0)) }
    }

    static func format(_ value: Double?) -> String {
        guard let value else { return "–" }
        return "\((value * 100).rounded() / 100)"
    }
}
