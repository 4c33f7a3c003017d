import Foundation
import QSMBenchmark
import QSMIO
import QSMPhantom
import Testing

/// The scan cache: a bench that adds a pipeline reuses the simulated scans from disk, and the
/// results equal those of a fresh simulation bit for bit.
@Suite(.serialized) struct ScanCacheTests {
    @Test func cachedScanRoundTripsBitForBit() throws {
        let directory = RunnerTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let suite = try RunnerTests.suite()
        let runner = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: false, filter: nil, toolVersion: "test")
        let executor = try runner.executor
        let run = suite.runs[0]
        let fresh = BenchScan(try executor.simulate(run))
        let cache = ScanCache(benchDirectory: directory)
        try cache.save(fresh, key: executor.scanKeyText(run))
        let loaded = try #require(cache.load(key: executor.scanKeyText(run)))
        // Bit patterns, not values: NaN-safe and no tolerance — the cache must be lossless.
        func bits(_ v: Volume<Float>) -> [UInt32] { v.voxels.map(\.bitPattern) }
        #expect(bits(loaded.magnitude) == bits(fresh.magnitude) && loaded.magnitude.frames == fresh.magnitude.frames)
        #expect(bits(loaded.phase) == bits(fresh.phase) && loaded.phase.grid == fresh.phase.grid)
        #expect(bits(loaded.localChi) == bits(fresh.localChi))
        #expect(bits(loaded.localField) == bits(fresh.localField) && bits(loaded.totalField) == bits(fresh.totalField))
        #expect(loaded.mask.voxels == fresh.mask.voxels && loaded.segmentation.voxels == fresh.segmentation.voxels)
        #expect(loaded.labels == fresh.labels && loaded.conventions == fresh.conventions)
        #expect(loaded.echoTimes == fresh.echoTimes && loaded.noiseSigma == fresh.noiseSigma)
        #expect(loaded.b0Direction == fresh.b0Direction && loaded.fieldStrength == fresh.fieldStrength)
        // A damaged cache file is not trusted.
        try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: cache.path(for: "0000000000000000")))
        #expect(cache.load(key: "0000000000000000") == nil)
    }

    @Test func addingAPipelineReusesCachedScans() throws {
        let directory = RunnerTests.scratch(), freshDirectory = RunnerTests.scratch()
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: freshDirectory)
        }
        let suite = try RunnerTests.suite()
        let simulations = Counter()
        var first = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: true,
                                    filter: try RunFilter("pipeline=tkd,seed=1"), toolVersion: "test")
        first.onSimulate = { _ in simulations.increment() }
        _ = try first.run { _, _, _ in }
        #expect(simulations.value == 2)  // two SNR levels, one seed
        let scans = try FileManager.default.contentsOfDirectory(atPath: directory + "/cache/scans").filter { $0.hasSuffix(".h5") }
        #expect(scans.count == 2)

        // The suite gains a pipeline (tv): its runs load the two scans instead of simulating.
        var second = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: true,
                                     filter: try RunFilter("seed=1"), toolVersion: "test")
        second.onSimulate = { _ in simulations.increment() }
        let (failures, timing) = try second.runTimed { _, _, _ in }
        #expect(failures.isEmpty && simulations.value == 2 && timing.simulated == 0 && timing.loaded == 2)
        let cached = try second.results().filter { $0.spec.pipeline.name == "tv" }
        #expect(cached.count == 2 && cached.allSatisfy { $0.simulationMilliseconds == 0 })

        // A fresh simulation with the same seed gives identical scores.
        var fresh = BenchmarkRunner(suite: suite, directory: freshDirectory, jobs: 1, resume: false,
                                    filter: try RunFilter("pipeline=tv,seed=1"), toolVersion: "test")
        fresh.cacheScans = false
        let freshCount = Counter()
        fresh.onSimulate = { _ in freshCount.increment() }
        _ = try fresh.run { _, _, _ in }
        #expect(freshCount.value == 2)
        let reference = try fresh.results()
        #expect(reference.map(\.identifier) == cached.map(\.identifier))
        #expect(reference.map(\.scores) == cached.map(\.scores))
        #expect(reference.map(\.attribution) == cached.map(\.attribution))
        #expect(!FileManager.default.fileExists(atPath: freshDirectory + "/cache"))
    }

    @Test func abandonedPartialFilesAreRemoved() throws {
        let directory = RunnerTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ResultStore(directory: directory)
        // PID 2^22 + 1 is above Linux's pid_max limit (4194304), so no process can own it.
        let dead = "\(directory)/runs/.0123456789abcdef.json.partial-4194305-ABCDEF12"
        let deadResults = "\(directory)/.results.h5.partial-4194305-12345678"
        let mine = "\(directory)/runs/.fedcba9876543210.json.partial-\(getpid())-ABCDEF12"
        let unrelated = "\(directory)/runs/.hidden-note"
        for path in [dead, deadResults, mine, unrelated] { try Data("{".utf8).write(to: URL(fileURLWithPath: path)) }
        #expect(store.removeAbandonedPartials() == 2)
        #expect(!FileManager.default.fileExists(atPath: dead) && !FileManager.default.fileExists(atPath: deadResults))
        #expect(FileManager.default.fileExists(atPath: mine) && FileManager.default.fileExists(atPath: unrelated))
    }
}

/// Two protocols that describe the same acquisition share one scan but stay two runs.
@Suite struct SharedScanTests {
    @Test func equalProtocolsShareTheScanButNotTheResult() throws {
        let yaml = """
            name: twins
            phantoms:
              - phantom: sphere
                matrix: 16
                radius: 3
            protocols:
              - name: a
                te: [0.005, 0.010]
                snr: 100
              - name: b
                te: [0.005, 0.010]
                snr: 100
            pipelines:
              - name: tkd
                inversion: tkd
            """
        let directory = RunnerTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let suite = try Suite.decode(try ConfigNode.parse(yaml: yaml, file: "twins.yaml"), file: "twins.yaml")
        let runner = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: false, filter: nil, toolVersion: "test")
        let plan = try runner.plan()
        #expect(plan.runs.count == 2 && plan.scans == 1)
        let executor = try runner.executor
        #expect(executor.key(plan.runs[0]) != executor.key(plan.runs[1]))
        let simulations = Counter()
        var counted = runner
        counted.onSimulate = { _ in simulations.increment() }
        _ = try counted.run { _, _, _ in }
        let results = try runner.results()
        #expect(simulations.value == 1 && results.map(\.identifier) == plan.runs.map(\.identifier))
        #expect(results[0].scores == results[1].scores)
        try ResultsFile.write(results, suite: suite, to: directory + "/results.h5", provenance: [:])
        #expect(try ResultsFile.read(directory + "/results.h5").results.count == 2)
    }
}

/// Noise-free protocols (SNR = inf) have their own keys and records that save, resume and round trip.
@Suite struct NoiseFreeRunTests {
    @Test func infiniteSNRRunsSaveAndRoundTrip() throws {
        let yaml = """
            name: clean
            phantoms:
              - phantom: sphere
                matrix: 16
                radius: 3
            protocols:
              - name: p
                te: [0.005, 0.010]
                snr: [100, inf]
            pipelines:
              - name: tkd
                inversion: tkd
            """
        let directory = RunnerTests.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let suite = try Suite.decode(try ConfigNode.parse(yaml: yaml, file: "clean.yaml"), file: "clean.yaml")
        let runner = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: true, filter: nil, toolVersion: "test")
        let plan = try runner.plan()
        #expect(plan.runs.count == 2 && plan.scans == 2)
        let executor = try runner.executor
        #expect(executor.key(plan.runs[0]) != executor.key(plan.runs[1]))
        #expect(executor.scanKeyText(plan.runs[0]) != executor.scanKeyText(plan.runs[1]))
        #expect(try runner.run { _, _, _ in }.isEmpty)
        let results = try runner.results()
        #expect(results.count == 2 && results[1].spec.acquisition.snr == .infinity)
        #expect(try runner.plan().finished == 2)
        try ResultsFile.write(results, suite: suite, to: directory + "/results.h5", provenance: [:])
        #expect(try ResultsFile.read(directory + "/results.h5").results.map(\.spec.acquisition.snr) == [100, .infinity])
    }
}
