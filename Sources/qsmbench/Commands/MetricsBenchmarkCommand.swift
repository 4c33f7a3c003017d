import ArgumentParser
import QSMCore
import QSMMetrics

struct MetricsBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Time every metric and a full score per convention on a synthetic pair.")

    @Option(help: "Volume shape, N or NX,NY,NZ.") var matrix: String = "256,256,176"
    @Option(help: "Timed repetitions per item (median reported).") var repetitions: Int = 3
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        let shape = try parseShape(matrix, option: "--matrix")
        guard repetitions > 0 else { throw QSMError.invalidOption("--repetitions", "\(repetitions) is not positive") }
        if let threads {
            guard threads > 0 else { throw QSMError.invalidOption("--threads", "\(threads) is not positive") }
            Parallelism.threadCount = threads
        }
        let report = try runMetricsBenchmark(shape: shape, repetitions: repetitions)
        print("Metrics benchmark: Double \(shape.x)×\(shape.y)×\(shape.z), \(report.threads) threads, median of \(repetitions)")
        print("Baseline: one pass of Σ(r − t)² over the grid = \(format(report.baselineMilliseconds)) ms")
        print("| item | wall (ms) | ratio to baseline | CPU, all threads (ms) |")
        print("|---|---:|---:|---:|")
        for row in report.rows {
            print("| \(row.label) | \(format(row.milliseconds)) | \(format(row.milliseconds / report.baselineMilliseconds, digits: 1)) | \(format(row.cpuMilliseconds)) |")
        }
    }
}
