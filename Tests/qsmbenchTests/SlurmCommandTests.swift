import Foundation
import QSMIO
import Testing

/// Whether a Slurm controller answers here (`scripts/slurm-local start` makes one); CI sets
/// QSMBENCH_REQUIRE_SLURM=1 so a cluster that failed to start fails the tests instead of skipping them.
private let slurmAnswers: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sinfo", "-h", "-o", "%T"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return process.terminationStatus == 0 && !data.isEmpty
}()
private let slurmRequired = ProcessInfo.processInfo.environment["QSMBENCH_REQUIRE_SLURM"] == "1"
private let slurmCondition = ConditionTrait.enabled(
    if: slurmAnswers || slurmRequired,
    "no Slurm controller answers `sinfo` (start one with scripts/slurm-local start)")

/// `bench` and `run` with `--executor slurm` against the real one-node cluster of scripts/slurm-local.
@Suite(.serialized) struct SlurmCommandTests {
    /// 6 runs of a 24³ sphere (2 pipelines × 3 seeds): tenths of a second each in release.
    static let suite = """
        name: slurm-test
        phantoms:
          - phantom: sphere
            matrix: 24
            chi: 0.1
            radius: 4
        protocols:
          - name: p
            te: [0.005, 0.010]
            snr: 100
        pipelines:
          - name: tkd
            bgremove: {method: vsharp, maxRadius: 3}
            inversion: tkd
          - name: tv
            bgremove: {method: vsharp, maxRadius: 3}
            inversion: {method: tv, maxIterations: 30}
        seeds: [1, 2, 3]
        """

    /// `runs/*.json` records (not failures) of a bench folder by identifier.
    static func records(_ directory: String) throws -> [String: [String: Any]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory + "/runs")
            .filter { $0.hasSuffix(".json") && !$0.hasSuffix(".failed.json") && !$0.hasPrefix(".") }
        var out: [String: [String: Any]] = [:]
        for name in names {
            let path = "\(directory)/runs/\(name)"
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            out[try #require(record["identifier"] as? String)] = record
        }
        return out
    }

    static func modificationDate(_ path: String) throws -> Date {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
    }

    @Test(slurmCondition) func slurmBenchMatchesLocalAndResumeRedoesOnlyTheFailedRun() throws {
        #expect(slurmAnswers, "QSMBENCH_REQUIRE_SLURM=1 but no Slurm controller answers; run scripts/slurm-local start")
        let scratch = CommandScratch()
        try Self.suite.write(toFile: scratch.path("suite.yaml"), atomically: true, encoding: .utf8)
        let local = scratch.path("local"), cluster = scratch.path("slurm")
        // One thread in both: the same arithmetic, so the metrics must agree exactly.
        let reference = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", local, "--threads", "1", "--quiet"])
        #expect(reference.status == 0, "\(reference.standardError)")
        let expected = try Self.records(local)
        #expect(expected.count == 6)

        // Force one run to fail: a folder where its result file goes makes the task's final rename fail.
        let victim = try #require(expected["sphere/p/tv/seed-2"])
        let blocker = "\(cluster)/runs/\(try #require(victim["key"] as? String)).json"
        try FileManager.default.createDirectory(atPath: blocker + "/in-the-way", withIntermediateDirectories: true)
        let first = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", cluster, "--executor", "slurm",
                                     "--cpus-per-task", "1", "--max-parallel", "2", "--time", "5:00", "--wait"])
        #expect(first.status == 1, "\(first.standardOutput)\n\(first.standardError)")
        #expect(first.standardOutput.contains("6 runs: 5 done, 1 failed"))
        let failedLine = try #require(first.standardOutput.split(separator: "\n").first { $0.hasPrefix("failed: ") })
        #expect(failedLine.hasPrefix("failed: sphere/p/tv/seed-2: ") && failedLine.contains("; log \(cluster)/slurm/logs/"))
        let log = String(try #require(failedLine.components(separatedBy: "; log ").last))
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("error: sphere/p/tv/seed-2:"))
        #expect(first.standardError.contains("error: slurm-test: 1 run(s) failed"))
        // The collector wrote results and report with the 5 finished runs and listed the failure.
        let report = try String(contentsOfFile: cluster + "/report.md", encoding: .utf8)
        #expect(report.contains("sphere/p/tv/seed-2"))
        var finished = try Self.records(cluster)
        #expect(finished.count == 5)
        var dates: [String: Date] = [:]
        for (identifier, record) in finished {
            dates[identifier] = try Self.modificationDate("\(cluster)/runs/\(try #require(record["key"] as? String)).json")
        }

        try FileManager.default.removeItem(atPath: blocker)
        let status = try runQSMBench(["status", cluster])
        #expect(status.status == 1 && status.standardOutput.contains("6 runs: 5 done, 1 failed"))
        let resumed = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", cluster, "--executor", "slurm", "--resume", "--wait"])
        #expect(resumed.status == 0, "\(resumed.standardOutput)\n\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("5 already finished, 1 to submit"))
        let taskIndex = try #require(resumed.standardOutput.firstMatch(of: /\(1 run, array (\d+)\)/)).1
        #expect(resumed.standardOutput.contains("6 runs: 6 done"))
        finished = try Self.records(cluster)
        #expect(finished.count == 6)
        // Nothing finished was redone, and every metric equals the local executor's.
        for (identifier, date) in dates {
            let key = try #require(finished[identifier]?["key"] as? String)
            #expect(try Self.modificationDate("\(cluster)/runs/\(key).json") == date, "\(identifier) was redone")
        }
        for (identifier, record) in expected {
            let scores = try #require(record["scores"] as? NSDictionary)
            let other = try #require(finished[identifier]?["scores"] as? NSDictionary)
            #expect(scores == other, "\(identifier): local and slurm metrics differ")
        }
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cluster + "/slurm/plan.json"))) as? [String: Any])
        let entries = try #require(plan["entries"] as? [[String: Any]])
        #expect(entries[Int(taskIndex)!]["identifier"] as? String == "sphere/p/tv/seed-2")
        let file = try HDF5File.open(cluster + "/results-summary.h5")
        let identifiers = try file.dataset("/summary/identifier").readStrings()
        try file.close()
        #expect(Set(identifiers) == Set(expected.keys))
        #expect(try runQSMBench(["status", cluster]).status == 0)
    }

    /// A task Slurm ends without a result (here cancelled while queued behind the `%1` throttle, after
    /// which Slurm keeps no record of it; a time limit or node failure also leaves no result) is
    /// recorded by the collector and redone alone by --resume.
    @Test(slurmCondition) func taskKilledBySlurmIsReportedByTheCollector() throws {
        #expect(slurmAnswers, "QSMBENCH_REQUIRE_SLURM=1 but no Slurm controller answers; run scripts/slurm-local start")
        let scratch = CommandScratch()
        try Self.suite.replacingOccurrences(of: "seeds: [1, 2, 3]", with: "seeds: [1, 2]")
            .write(toFile: scratch.path("suite.yaml"), atomically: true, encoding: .utf8)
        let out = scratch.path("out")
        let submitted = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--executor", "slurm",
                                         "--max-parallel", "1"])
        #expect(submitted.status == 0, "\(submitted.standardError)")
        let job = String(try #require(submitted.standardOutput.firstMatch(of: /submitted job array (\d+)\s/)).1)
        let cancel = Process()
        cancel.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cancel.arguments = ["scancel", "\(job)_3"]
        try cancel.run()
        cancel.waitUntilExit()
        #expect(cancel.terminationStatus == 0)
        let status = try runQSMBench(["status", out, "--wait"])
        #expect(status.status == 1)
        #expect(status.standardOutput.contains("4 runs: 3 done, 1 failed"), "\(status.standardOutput)")
        #expect(status.standardOutput.contains("failed: sphere/p/tv/seed-2: task 3 of job \(job) left no result"))
        #expect(status.standardOutput.components(separatedBy: "; log ").count == 2, "the log is named once")
        // The collector recorded it, so the report lists it.
        let report = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(report.contains("sphere/p/tv/seed-2") && report.contains("task 3 of job \(job) left no result"))
        let resumed = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--executor", "slurm", "--resume", "--wait"])
        #expect(resumed.status == 0, "\(resumed.standardOutput)\n\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("(1 run, array 3)") && resumed.standardOutput.contains("4 runs: 4 done"))
    }

    @Test(slurmCondition) func runOnSlurmReconstructsEachSeriesAsOneTask() throws {
        #expect(slurmAnswers, "QSMBENCH_REQUIRE_SLURM=1 but no Slurm controller answers; run scripts/slurm-local start")
        let scratch = CommandScratch()
        let bids = scratch.path("bids")
        let simulated = try runQSMBench(["simulate", "--phantom", "sphere", "--matrix", "24", "--radius", "4", "--out", bids])
        #expect(simulated.status == 0, "\(simulated.standardError)")
        // A second subject: the same images under another label.
        let anat = "\(bids)/sub-sphere/anat", copy = "\(bids)/sub-twin/anat"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: anat) {
            try FileManager.default.copyItem(atPath: "\(anat)/\(name)",
                                             toPath: "\(copy)/\(name.replacingOccurrences(of: "sub-sphere", with: "sub-twin"))")
        }
        let mask = "\(bids)/derivatives/qsmbench/sub-sphere/anat/sub-sphere_mask.nii.gz"
        let options = ["--pipeline", "fast", "--set", "bgremove.radius=2", "--mask", mask]
        let local = try runQSMBench(["run", bids, "--out", scratch.path("local")] + options)
        #expect(local.status == 0, "\(local.standardError)")
        let localAgain = try runQSMBench(["run", bids, "--out", scratch.path("local"), "--resume"] + options)
        #expect(localAgain.status == 0 && localAgain.standardOutput.contains("2 of 2 series already reconstructed; skipped"))
        let out = scratch.path("derivatives")
        // As many CPUs per task as the local run has threads (every core; the one-node cluster is this
        // machine): the same arithmetic, so the same χ.
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let cluster = try runQSMBench(["run", bids, "--out", out, "--executor", "slurm", "--cpus-per-task", "\(cores)", "--wait"] + options)
        #expect(cluster.status == 0, "\(cluster.standardOutput)\n\(cluster.standardError)")
        #expect(cluster.standardOutput.contains("2 series: 2 done"))
        let job = String(try #require(cluster.standardOutput.firstMatch(of: /submitted job array (\d+)\s/)).1)
        let log = try String(contentsOfFile: "\(out)/slurm/logs/\(job)_0.log", encoding: .utf8)
        #expect(log.contains("run-task 0: sub-sphere") && log.contains(", \(cores) thread(s)"), "threads follow SLURM_CPUS_PER_TASK: \(log)")
        for subject in ["sphere", "twin"] {
            let path = "sub-\(subject)/anat/sub-\(subject)_Chimap.nii.gz"
            let a = try NIfTI.readVolume(scratch.path("local") + "/" + path), b = try NIfTI.readVolume(out + "/" + path)
            #expect(a.voxels == b.voxels, "\(path): local and slurm χ differ")
        }
        #expect(FileManager.default.fileExists(atPath: out + "/dataset_description.json"))
        #expect(try String(contentsOfFile: out + "/.bidsignore", encoding: .utf8) == "slurm/\n")
        let again = try runQSMBench(["run", bids, "--out", out, "--executor", "slurm", "--resume"] + options)
        #expect(again.status == 0 && again.standardOutput.contains("2 already reconstructed, 0 to submit"))
    }

    @Test(slurmCondition) func sbatchRefusalIsOneLineNamingTheOption() throws {
        #expect(slurmAnswers, "QSMBENCH_REQUIRE_SLURM=1 but no Slurm controller answers; run scripts/slurm-local start")
        let scratch = CommandScratch()
        try Self.suite.write(toFile: scratch.path("suite.yaml"), atomically: true, encoding: .utf8)
        let result = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", scratch.path("out"), "--executor", "slurm",
                                      "--partition", "no-such-partition"])
        #expect(result.status == 2)
        #expect(result.standardError.hasPrefix("error: --partition: sbatch refused "))
        #expect(result.standardError.contains("no-such-partition") && result.standardError.split(separator: "\n").count == 1)
        // Nothing was submitted, so status lists every run as not submitted.
        #expect(try runQSMBench(["status", scratch.path("out")]).standardOutput.contains("6 runs: 0 done, 6 not submitted"))
    }

    /// Needs no cluster: the dry run prints the scripts, and a missing sbatch is a clear error.
    @Test func dryRunPrintsTheScriptsAndMissingSbatchIsClear() throws {
        let scratch = CommandScratch()
        try Self.suite.write(toFile: scratch.path("suite.yaml"), atomically: true, encoding: .utf8)
        let out = scratch.path("out")
        let dry = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--executor", "slurm", "--dry-run",
                                   "--partition", "short", "--time", "0:20:00", "--mem", "2G", "--cpus-per-task", "2",
                                   "--max-parallel", "3", "--account", "proj", "--qos", "low", "--sbatch-arg", "--constraint=avx2"])
        #expect(dry.status == 0, "\(dry.standardError)")
        let lines = dry.standardOutput.split(separator: "\n").map(String.init)
        let executable = try #require(qsmbenchExecutable())
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: executable)) ?? executable
        for expected in ["#SBATCH --array=0-5%3", "#SBATCH --output=\(out)/slurm/logs/%A_%a.log", "#SBATCH --partition=short",
                         "#SBATCH --time=0:20:00", "#SBATCH --mem=2G", "#SBATCH --cpus-per-task=2", "#SBATCH --account=proj",
                         "#SBATCH --qos=low", "#SBATCH --constraint=avx2", "#SBATCH --dependency=afterany:<array job id>",
                         "#SBATCH --output=\(out)/slurm/logs/collect_%j.log"] {
            #expect(lines.contains(expected), "missing \(expected)")
        }
        let exec = try #require(lines.first { $0.hasPrefix("exec ") && $0.contains(" bench-task ") })
        #expect(exec.hasPrefix("exec '/") && exec.contains("qsmbench' bench-task '\(out)' \"$SLURM_ARRAY_TASK_ID\""))
        #expect(URL(fileURLWithPath: resolved).lastPathComponent == "qsmbench")
        #expect(lines.filter { $0 == "#!/bin/bash" }.count == 2)
        #expect(!FileManager.default.fileExists(atPath: out + "/slurm/plan.json"), "a dry run submits and plans nothing")

        // The default memory request is the plan's estimate, in MB.
        let estimated = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--executor", "slurm", "--dry-run"])
        let memory = try #require(estimated.standardOutput.firstMatch(of: /#SBATCH --mem=(\d+)M/)).1
        #expect((100...400).contains(Int(memory)!), "a 24³ run needs ~100 MB, not \(memory) MB")

        let misplaced = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--partition", "short"])
        #expect(misplaced.status == 2 && misplaced.standardError == "error: --partition: only with --executor slurm\n")
        let badMemory = try runQSMBench(["bench", scratch.path("suite.yaml"), "--out", out, "--executor", "slurm", "--mem", "lots"])
        #expect(badMemory.status == 2 && badMemory.standardError.hasPrefix("error: --mem: 'lots'"))

        // sbatch not on PATH.
        let executablePath = try #require(qsmbenchExecutable())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executablePath)
        process.arguments = ["bench", scratch.path("suite.yaml"), "--out", out, "--executor", "slurm"]
        process.environment = ["PATH": scratch.directory, "HOME": NSHomeDirectory()]
        let error = Pipe()
        process.standardError = error
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 2)
        #expect(message.hasPrefix("error: --executor: slurm: 'sbatch' is not on PATH"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: out + "/slurm"), "nothing is written when sbatch is missing")
    }
}
