import Foundation
import QSMBenchmark
import QSMIO
import QSMPhantom
import Testing

/// A tiny suite end to end: a 24³ sphere, two pipelines, two seeds.
@Suite(.serialized) struct RunnerTests {
    static let yaml = """
        name: tiny
        phantoms:
          - phantom: sphere
            matrix: 24
            chi: 0.1
            radius: 3
        protocols:
          - name: p
            te: [0.005, 0.010]
            snr: [50, 200]
        pipelines:
          - name: tkd
            bgremove: {method: vsharp, maxRadius: 4}
            inversion: tkd
          - name: tv
            bgremove: {method: vsharp, maxRadius: 4}
            inversion: {method: tv, maxIterations: 30}
        seeds: [1, 2]
        attribution: true
        """

    static func scratch() -> String {
        let directory = NSTemporaryDirectory() + "qsmbench-runner-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static func suite() throws -> Suite {
        try Suite.decode(try ConfigNode.parse(yaml: yaml, file: "tiny.yaml"), file: "tiny.yaml")
    }

    @Test func runsSavesAndResumesWithoutRedoingWork() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let runner = BenchmarkRunner(suite: try Self.suite(), directory: directory, jobs: 2, resume: true,
                                     filter: nil, toolVersion: "test")
        let plan = try runner.plan()
        #expect(plan.runs.count == 8 && plan.finished == 0 && plan.scans == 4)
        let calls = Counter()
        let failures = try runner.run { _, _, _ in calls.increment() }
        #expect(failures.isEmpty)
        #expect(calls.value == 8)
        let results = try runner.results()
        #expect(results.count == 8)
        // Every run was scored and attributed; the sphere's field inversion is reasonable.
        for r in results {
            #expect(r.scores.nrmse != nil && r.scores.nrmse!.isFinite)
            #expect(r.attribution.keys.sorted() == ["from_true_total_field", "inversion_from_true_local_field"])
        }
        // Resume: nothing left to do, nothing redone, results unchanged.
        let again = try runner.plan()
        #expect(again.finished == 8 && again.scans == 0)
        let second = Counter()
        _ = try runner.run { _, _, _ in second.increment() }
        #expect(second.value == 0)
        #expect(try runner.results().map(\.finished) == results.map(\.finished))

        // A lost result (a run killed before it saved) is the only one redone.
        let victim = results[3]
        try FileManager.default.removeItem(atPath: "\(directory)/runs/\(victim.key).json")
        let third = Counter()
        _ = try runner.run { _, _, _ in third.increment() }
        #expect(third.value == 1)
        #expect(try runner.results().count == 8)
    }

    @Test func resultsFileRoundTripsAndReportsRegenerate() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let suite = try Self.suite()
        let runner = BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: false,
                                     filter: try RunFilter("pipeline=tkd,seed=1"), toolVersion: "test")
        _ = try runner.run { _, _, _ in }
        let results = try runner.results()
        #expect(results.count == 2)
        let store = try ResultStore(directory: directory)
        var volumes: [String: StoredVolumes] = [:]
        for r in results { volumes[r.key] = try store.volumes(key: r.key) }
        #expect(volumes.values.count == 2)
        try ResultsFile.write(results, suite: suite, to: directory + "/results.h5", provenance: ["tool_version": "test"],
                              volumes: volumes)
        let (read, attributes) = try ResultsFile.read(directory + "/results.h5")
        #expect(read.map(\.identifier) == results.map(\.identifier))
        #expect(read.map(\.scores.nrmse) == results.map(\.scores.nrmse))
        #expect(attributes["suite"] == "tiny")
        let stored = try #require(try ResultsFile.volumes(directory + "/results.h5", key: results[0].key))
        let original = try #require(volumes[results[0].key])
        // truth = χ − error is rebuilt in Float: exact to rounding of values ≤ 0.2 ppm.
        #expect(zip(stored.truth.voxels, original.truth.voxels).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(stored.mask.voxels == original.mask.voxels)

        let path = try BenchReport(results: read, failures: [], suiteName: "tiny", provenance: [:],
                                   volumes: { try? ResultsFile.volumes(directory + "/results.h5", key: $0) })
            .write(to: directory + "/regenerated")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("## Ranking") && text.contains("## Sweeps") && text.contains("## Per-stage attribution"))
        let figures = try FileManager.default.contentsOfDirectory(atPath: directory + "/regenerated/figures")
        #expect(figures.contains { $0.hasSuffix(".svg") } && figures.filter { $0.hasSuffix(".png") }.count == 2)
    }

    @Test func invalidPipelineFailsBeforeAnyWork() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bad = Self.yaml.replacingOccurrences(of: "maxIterations: 30", with: "maxIterations: 0")
        let suite = try Suite.decode(try ConfigNode.parse(yaml: bad, file: "bad.yaml"), file: "bad.yaml")
        let runner = BenchmarkRunner(suite: suite, directory: directory + "/out", jobs: 1, resume: false,
                                     filter: nil, toolVersion: "test")
        do {
            _ = try runner.plan()
            Issue.record("no error")
        } catch {
            #expect(error.description == "bad.yaml:17: pipelines[1].inversion.maxIterations: 0 is outside [1, 100000]")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/out"))
    }

    @Test func comparisonFlagsRegressionsAndMissingRuns() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let runner = BenchmarkRunner(suite: try Self.suite(), directory: directory, jobs: 1, resume: false,
                                     filter: try RunFilter("pipeline=tkd"), toolVersion: "test")
        _ = try runner.run { _, _, _ in }
        let baseline = try runner.results()
        #expect(try Comparison(baseline: baseline, candidate: baseline, metric: "nrmse", tolerance: nil).passed)
        var worse = baseline
        worse[0].scores.nrmse = (worse[0].scores.nrmse ?? 0) + 1
        let failed = try Comparison(baseline: baseline, candidate: worse, metric: "nrmse", tolerance: 0.5)
        #expect(!failed.passed && failed.rows.filter(\.regressed).map(\.identifier) == [baseline[0].identifier])
        let missing = try Comparison(baseline: baseline, candidate: Array(baseline.dropLast()), metric: "nrmse", tolerance: nil)
        #expect(!missing.passed && missing.missing == [baseline.last!.identifier])
        #expect(throws: QSMError.self) { try Comparison(baseline: baseline, candidate: baseline, metric: "speed", tolerance: nil) }
    }

    @Test func rotationMatchesOrientation() {
        let angles = SIMD3<Double>(10, -20, 30)
        let rotated = PhantomCatalog.rotate(SIMD3(0, 0, 1), byDegrees: angles)
        let expected = Orientation.b0Direction(headRotationDegrees: angles)
        #expect(((rotated - expected) * (rotated - expected)).sum() < 1e-24)
    }
}

/// Thread-safe call counter for progress callbacks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
