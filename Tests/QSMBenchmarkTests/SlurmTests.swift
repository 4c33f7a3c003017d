import Foundation
import QSMBenchmark
import QSMIO
import Testing

/// Script generation, Slurm output parsing and status bookkeeping, without a cluster (the commands
/// against a real one are in qsmbenchTests/SlurmCommandTests).
@Suite struct SlurmTests {
    @Test func indexListsCompressAndParseBack() {
        #expect(SlurmScript.indexList([0, 1, 2, 3]) == "0-3")
        #expect(SlurmScript.indexList([7, 0, 2, 1, 9, 10, 11, 3]) == "0-3,7,9-11")
        #expect(SlurmScript.indexList([5]) == "5")
        #expect(SlurmScript.parseIndexList("0-3,7,9-11%2") == [0, 1, 2, 3, 7, 9, 10, 11])
        #expect(SlurmScript.parseIndexList("1-9:4") == [1, 5, 9])
        #expect(SlurmScript.parseIndexList("4") == [4])
        #expect(SlurmScript.parseIndexList("3-1") == nil)
        #expect(SlurmScript.parseIndexList("a-b") == nil)
        let indices = [0, 2, 3, 4, 8, 13, 14]
        #expect(SlurmScript.parseIndexList(SlurmScript.indexList(indices)) == indices)
    }

    @Test func arrayAndCollectorScriptsCarryEveryOption() {
        var options = SlurmOptions()
        options.partition = "short"
        options.time = "0:30:00"
        options.cpusPerTask = 4
        options.maxParallel = 3
        options.account = "proj-7"
        options.qos = "normal"
        options.extraArguments = ["--constraint=avx2", "--mail-type=END"]
        let script = SlurmScript(options: options, executable: "/opt/bin/qsmbench", directory: "/data/out",
                                 workingDirectory: "/data", jobName: "qsmbench-my suite")
        let array = script.array(command: "bench-task", indices: [0, 1, 2, 5], memoryMegabytes: 900, purpose: "test")
        let lines = array.split(separator: "\n").map(String.init)
        #expect(lines.first == "#!/bin/bash")
        for expected in ["#SBATCH --job-name=qsmbench-my_suite", "#SBATCH --array=0-2,5%3",
                         "#SBATCH --output=/data/out/slurm/logs/%A_%a.log", "#SBATCH --chdir=/data",
                         "#SBATCH --cpus-per-task=4", "#SBATCH --mem=900M", "#SBATCH --time=0:30:00",
                         "#SBATCH --partition=short", "#SBATCH --account=proj-7", "#SBATCH --qos=normal",
                         "#SBATCH --constraint=avx2", "#SBATCH --mail-type=END",
                         "exec '/opt/bin/qsmbench' bench-task '/data/out' \"$SLURM_ARRAY_TASK_ID\""] {
            #expect(lines.contains(expected), "missing \(expected)")
        }
        // sbatch stops reading #SBATCH lines at the first command: every option must come before it.
        let firstCommand = lines.firstIndex { !$0.hasPrefix("#") && !$0.isEmpty }!
        #expect(lines.lastIndex { $0.hasPrefix("#SBATCH") }! < firstCommand)

        options.memory = "4G"
        let collector = SlurmScript(options: options, executable: "/opt/bin/qsmbench", directory: "/data/out",
                                    workingDirectory: "/data", jobName: "x")
            .collector(command: "bench-collect", arrayJobID: "1234", memoryMegabytes: 900, purpose: "merge")
        #expect(collector.contains("#SBATCH --dependency=afterany:1234\n"))
        #expect(collector.contains("#SBATCH --mem=4G\n") && !collector.contains("--mem=900M"))
        #expect(collector.contains("#SBATCH --output=/data/out/slurm/logs/collect_%j.log\n"))
        #expect(!collector.contains("--array"))
        #expect(collector.hasSuffix("exec '/opt/bin/qsmbench' bench-collect '/data/out'\n"))
    }

    @Test func badOptionsNameTheOption() {
        func problem(_ change: (inout SlurmOptions) -> Void) -> String? {
            var options = SlurmOptions()
            change(&options)
            do { try options.validate(); return nil } catch { return error.description }
        }
        #expect(problem { _ in } == nil)
        #expect(problem { $0.memory = "12X" }?.hasPrefix("--mem: '12X'") == true)
        #expect(problem { $0.time = "two hours" }?.hasPrefix("--time:") == true)
        #expect(problem { $0.partition = "a b" }?.hasPrefix("--partition:") == true)
        #expect(problem { $0.qos = "x\nexit" }?.hasPrefix("--qos:") == true)
        #expect(problem { $0.cpusPerTask = 0 }?.hasPrefix("--cpus-per-task:") == true)
        #expect(problem { $0.maxParallel = 0 }?.hasPrefix("--max-parallel:") == true)
        #expect(problem { $0.extraArguments = ["constraint=avx2"] }?.hasPrefix("--sbatch-arg:") == true)
        #expect(SlurmOptions.megabytes("800M") == 800 && SlurmOptions.megabytes("4G") == 4096
                && SlurmOptions.megabytes("1000") == 1000 && SlurmOptions.megabytes("2048k") == 2)
        #expect(SlurmOptions.megabytes("-1G") == nil && SlurmOptions.megabytes("G") == nil)
    }

    /// sbatch's own messages (slurm-wlm 22.05) become one line naming the qsmbench option.
    @Test func sbatchRefusalsNameTheOption() {
        let partition = SlurmClient.submissionError("""
            sbatch: error: invalid partition specified: gpu
            sbatch: error: Batch job submission failed: Invalid partition name specified
            """, script: "/o/slurm/array-1.sh")
        #expect(partition == .invalidOption("--partition", "sbatch refused /o/slurm/array-1.sh: invalid partition specified: gpu "
                                            + "(Batch job submission failed: Invalid partition name specified)"))
        let memory = SlurmClient.submissionError("""
            sbatch: error: Memory specification can not be satisfied
            sbatch: error: Batch job submission failed: Requested node configuration is not available
            """, script: "s")
        guard case .invalidOption("--mem", _) = memory else { Issue.record("\(memory)"); return }
        guard case .invalidOption("--time", _) = SlurmClient.submissionError("sbatch: error: Invalid --time specification\n", script: "s")
        else { Issue.record("time"); return }
        let other = SlurmClient.submissionError("sbatch: error: Batch job submission failed: Socket timed out\n", script: "s")
        #expect(other == .library("sbatch", "refused s: Batch job submission failed: Socket timed out"))
        #expect(!other.description.contains("\n"))
    }

    /// Lines as `scontrol -o show job` prints them (shortened): finished tasks one per line, a
    /// pending array's unstarted tasks as one line with an index list.
    @Test func scontrolLinesGiveEachTaskState() {
        let text = """
            JobId=41 ArrayJobId=40 ArrayTaskId=1 JobName=q JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15 RunTime=00:01:22
            JobId=42 ArrayJobId=40 ArrayTaskId=0 JobName=q JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0
            JobId=40 ArrayJobId=40 ArrayTaskId=2-4%2 ArrayTaskThrottle=2 JobName=q JobState=PENDING Reason=JobArrayTaskLimit ExitCode=0:0
            JobId=43 JobName=q-collect JobState=PENDING Reason=Dependency Dependency=afterany:40_*(unfulfilled) ExitCode=0:0
            """
        let tasks = SlurmClient.parseTasks(text)
        #expect(tasks.count == 6)
        #expect(tasks[0].arrayJobID == "40" && tasks[0].index == 1 && tasks[0].state == "TIMEOUT"
                && tasks[0].exitCode == "0:15" && tasks[0].reason == "TimeLimit")
        #expect(tasks[1].index == 0 && tasks[1].state == "FAILED" && tasks[1].exitCode == "1:0" && !tasks[1].isActive)
        #expect(tasks[2...4].map(\.index) == [2, 3, 4] && tasks[2...4].allSatisfy { $0.isActive && $0.state == "PENDING" })
        #expect(tasks[5].index == nil && tasks[5].arrayJobID == "43" && tasks[5].reason == "Dependency")
    }

    /// Without Slurm, status comes from the result and failure files alone.
    @Test func statusFromResultAndFailureFiles() throws {
        let directory = NSTemporaryDirectory() + "qsmbench-slurm-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var plan = SlurmPlan(kind: .bench, toolVersion: "test",
                             entries: (0..<5).map { SlurmPlan.Entry(identifier: "run-\($0)", key: "key\($0)") })
        plan.submissions = [SlurmPlan.Submission(arrayJobID: "7", collectorJobID: "8", indices: [0, 1, 2, 3], submitted: "now")]
        try plan.write(directory: directory)
        try AtomicFile.write(Data("{}".utf8), to: "\(directory)/runs/key0.json")
        try plan.recordFailure(of: plan.entries[1], message: "inversion: diverged", directory: directory)
        // A directory where a result should be is not a result (and blocks the rename of one).
        try FileManager.default.createDirectory(atPath: "\(directory)/runs/key2.json", withIntermediateDirectories: true)
        let status = try JobStatus.read(directory: directory, client: nil)
        #expect(status.entries.map(\.state) == [.done, .failed, .pending, .pending, .notSubmitted])
        #expect(status.entries[1].line == "failed: run-1: inversion: diverged; log \(directory)/slurm/logs/7_1.log")
        #expect(status.summary == "5 runs: 1 done, 1 failed, 2 pending, 1 not submitted")
        // Success removes the failure record.
        plan.clearFailure(of: plan.entries[1], directory: directory)
        #expect(plan.recordedFailure(of: plan.entries[1], directory: directory) == nil)
        #expect(throws: QSMError.self) { try plan.entry(5, directory: directory) }
    }
}
