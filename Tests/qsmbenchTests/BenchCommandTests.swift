import Foundation
import QSMIO
import Testing

/// `qsmbench bench` killed mid-way and resumed, and `qsmbench compare` exit codes, through the binary.
@Suite(.serialized) struct BenchCommandTests {
    /// 12 runs (2 pipelines × 6 seeds) of a 40³ sphere; TV with attribution makes each run take long
    /// enough (tenths of a second) for the test to kill the bench between runs.
    static let suite = """
        name: killable
        phantoms:
          - phantom: sphere
            matrix: 40
            chi: 0.1
            radius: 5
        protocols:
          - name: p
            te: [0.005, 0.010]
            snr: 100
        pipelines:
          - name: tkd
            bgremove: {method: vsharp, maxRadius: 4}
            inversion: tkd
          - name: tv
            bgremove: {method: vsharp, maxRadius: 4}
            inversion: {method: tv, maxIterations: 200}
        seeds: [1, 2, 3, 4, 5, 6]
        attribution: true
        """

    static func resultFiles(_ directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/runs")) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasSuffix(".failed.json") && !$0.hasPrefix(".") }.sorted()
    }

    @Test func killedBenchResumesWithoutLosingOrRedoingRuns() throws {
        let scratch = CommandScratch()
        try Self.suite.write(toFile: scratch.path("suite.yaml"), atomically: true, encoding: .utf8)
        let out = scratch.path("out")
        let executable = try #require(qsmbenchExecutable(), "build qsmbench first (swift build --build-tests)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["bench", scratch.path("suite.yaml"), "--out", out, "--quiet", "--threads", "1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while Self.resultFiles(out).count < 2 && process.isRunning && Date() < deadline { usleep(10_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let survivors = Self.resultFiles(out)
        #expect(survivors.count >= 2)
        #expect(survivors.count < 12, "the bench finished before it could be killed; the kill was not exercised")
        #expect(!FileManager.default.fileExists(atPath: out + "/results.h5"))
        var before: [String: (Date, String)] = [:]
        for name in survivors {
            let path = "\(out)/runs/\(name)"
            let modified = try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            before[name] = (modified, try #require(record["finished"] as? String))
        }

        let resumed = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--resume", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("\(survivors.count) already finished"))
        let all = Self.resultFiles(out)
        #expect(all.count == 12)
        for (name, (modified, finished)) in before {
            let path = "\(out)/runs/\(name)"
            let now = try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            #expect(now == modified && record["finished"] as? String == finished)
        }
        // No temporary file of the killed process is left, and results.h5 lists every run once.
        let leftovers = (try FileManager.default.contentsOfDirectory(atPath: out + "/runs")
            + FileManager.default.contentsOfDirectory(atPath: out + "/cache/scans")).filter { $0.contains(".partial-") }
        #expect(leftovers.isEmpty)
        let file = try HDF5File.open(out + "/results-summary.h5")
        let identifiers = try file.dataset("/summary/identifier").readStrings()
        try file.close()
        #expect(identifiers.count == 12 && Set(identifiers).count == 12)
    }

    @Test func compareExitCodes() throws {
        let scratch = CommandScratch()
        let small = Self.suite.replacingOccurrences(of: "seeds: [1, 2, 3, 4, 5, 6]", with: "seeds: [1, 2]")
            .replacingOccurrences(of: "maxIterations: 200", with: "maxIterations: 20")
        try small.write(toFile: scratch.path("suite.yaml"), atomically: true, encoding: .utf8)
        let bench = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", scratch.path("out"), "--quiet"])
        #expect(bench.status == 0, "\(bench.standardError)")
        let baseline = scratch.path("out/results-summary.h5")
        #expect(try runQSMBench(["compare", baseline, scratch.path("out/results.h5")]).status == 0)

        // The candidate: every tv run 5 percentage points worse in NRMSE (a consistent shift).
        let candidate = scratch.path("worse.h5")
        try FileManager.default.copyItem(atPath: baseline, toPath: candidate)
        let file = try HDF5File.open(candidate, writable: true)
        for key in try file.dataset("/summary/key").readStrings() {
            let group = try file.group("/runs/\(key)")
            let text = try #require(try group.attribute("record").stringValue)
            var record = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            var spec = try #require(record["spec"] as? [String: Any])
            let pipeline = try #require(spec["pipeline"] as? [String: Any])
            guard pipeline["name"] as? String == "tv" else { continue }
            var scores = try #require(record["scores"] as? [String: Any])
            scores["nrmse"] = try #require(scores["nrmse"] as? Double) + 5
            record["scores"] = scores
            spec["pipeline"] = pipeline
            record["spec"] = spec
            let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
            try group.setAttribute("record", value: String(decoding: data, as: UTF8.self))
        }
        try file.close()
        let worse = try runQSMBench(["compare", baseline, candidate, "--markdown", scratch.path("compare.md")])
        #expect(worse.status == 1, "\(worse.standardOutput)")
        #expect(worse.standardError.contains("regressed on nrmse"))
        let markdown = try String(contentsOfFile: scratch.path("compare.md"), encoding: .utf8)
        #expect(markdown.contains("**FAIL**") && markdown.contains("sphere/p/tv") && markdown.contains("regressed"))
        // The other direction is an improvement: passes.
        #expect(try runQSMBench(["compare", candidate, baseline]).status == 0)

        // Unusable input: missing file, a file that is not HDF5, an HDF5 file that is not a results file.
        #expect(try runQSMBench(["compare", scratch.path("absent.h5"), baseline]).status == 2)
        try "name: x\n".write(toFile: scratch.path("text.h5"), atomically: true, encoding: .utf8)
        #expect(try runQSMBench(["compare", baseline, scratch.path("text.h5")]).status == 2)
        let other = try HDF5File.create(scratch.path("other.h5"))
        try other.root.setAttribute("format", value: "something-else")
        try other.close()
        let notResults = try runQSMBench(["compare", scratch.path("other.h5"), baseline])
        #expect(notResults.status == 2 && notResults.standardError.contains("is not a qsmbench results file"))
        #expect(try runQSMBench(["compare", baseline, baseline, "--metric", "speed"]).status == 2)
    }
}
