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
        // Every run is listed, and every PNG is a valid image: signature, then an IHDR chunk whose
        // CRC matches and whose size is that of a montage (non-empty, at most a few thousand pixels).
        #expect(text.contains("## All runs"))
        for r in results { #expect(text.contains("`\(r.identifier)`")) }
        for name in figures where name.hasSuffix(".png") {
            #expect(text.contains("figures/\(name)"))
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/regenerated/figures/" + name)))
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
            func bigEndian(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
            #expect(bigEndian(8) == 13 && String(decoding: bytes[12..<16], as: UTF8.self) == "IHDR")
            #expect(Zlib.crc32(Array(bytes[12..<29])) == UInt32(bigEndian(29)))
            let width = bigEndian(16), height = bigEndian(20)
            #expect(width > 0 && width < 4096 && height > 0 && height < 4096)
        }

        // Schema: root format, per-run metrics and stage tables, summary columns of one row per run.
        let file = try HDF5File.open(directory + "/results.h5")
        defer { try? file.close() }
        #expect(try file.root.attribute("format").stringValue == "qsmbench-results/1")
        #expect(try file.dataset("/summary/identifier").readStrings() == results.map(\.identifier))
        #expect(try file.dataset("/summary/seed").read(as: Int64.self) == results.map { Int64($0.spec.seed) })
        #expect(try file.dataset("/summary/nrmse").read(as: Double.self) == results.map { $0.scores.nrmse ?? .nan })
        for r in results {
            #expect(try file.group("/runs/\(r.key)/metrics").attribute("nrmse").doubleValue == r.scores.nrmse)
            #expect(try file.group("/runs/\(r.key)").attribute("identifier").stringValue == r.identifier)
            #expect(try file.dataset("/runs/\(r.key)/stages/milliseconds").read(as: Double.self) == r.stages.map(\.milliseconds))
            #expect(try file.dataset("/runs/\(r.key)/stages/name").readStrings().count == r.stages.count)
            #expect(file.exists("/runs/\(r.key)/attribution/inversion_from_true_local_field"))
            #expect(file.exists("/runs/\(r.key)/chi") && file.exists("/runs/\(r.key)/mask"))
        }
        // Written without volumes (the small baseline form): same records, no volume datasets.
        try ResultsFile.write(results, suite: suite, to: directory + "/summary.h5", provenance: [:])
        #expect(try ResultsFile.read(directory + "/summary.h5").results.map(\.scores) == results.map(\.scores))
        #expect(try ResultsFile.volumes(directory + "/summary.h5", key: results[0].key) == nil)
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
        // A consistent shift of one configuration (both seeds +1 %) regresses: mean 1 > 0.5 and the
        // paired differences have no spread.
        let configuration = baseline[0].identifier.split(separator: "/").dropLast().joined(separator: "/")
        var worse = baseline
        for i in worse.indices where worse[i].identifier.hasPrefix(configuration + "/") {
            worse[i].scores.nrmse = (worse[i].scores.nrmse ?? 0) + 1
        }
        let failed = try Comparison(baseline: baseline, candidate: worse, metric: "nrmse", tolerance: 0.5)
        #expect(!failed.passed && failed.configurations.filter(\.regressed).map(\.name) == [configuration])
        #expect(failed.rows.filter(\.regressed).count == 2)
        // One seed +2, the other unchanged: mean 1 > 0.5 but within the seed-to-seed spread
        // (95 % half-width t(0.975, 1)·√2/√2 = 12.7), so the gate passes and flags the run only.
        var noisy = baseline
        noisy[0].scores.nrmse = (noisy[0].scores.nrmse ?? 0) + 2
        let spread = try Comparison(baseline: baseline, candidate: noisy, metric: "nrmse", tolerance: 0.5)
        #expect(spread.passed && spread.rows.filter(\.regressed).count == 1)
        let interval = try #require(spread.configurations.first { $0.name == configuration })
        #expect(interval.count == 2 && abs(interval.meanDifference - 1) < 1e-9 && abs(interval.spread - 12.706) < 1e-3)
        // A higher-is-better metric regresses downwards.
        var lowerSSIM = baseline
        for i in lowerSSIM.indices { lowerSSIM[i].scores.ssim = (lowerSSIM[i].scores.ssim ?? 0) - 0.05 }
        #expect(!(try Comparison(baseline: baseline, candidate: lowerSSIM, metric: "ssim", tolerance: nil).passed))
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
