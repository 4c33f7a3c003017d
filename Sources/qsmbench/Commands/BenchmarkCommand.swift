import ArgumentParser
import QSMCore

struct BenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Print performance figures (ratios against baselines measured in the same run).",
        subcommands: [FFTBenchmarkCommand.self, PipelineBenchmarkCommand.self, SimulateBenchmarkCommand.self,
                      MetricsBenchmarkCommand.self])
}

struct FFTBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fft",
        abstract: "Forward+inverse r2c FFT through qsmbench's wrapper vs direct FFTW calls.")

    @Option(help: "Volume shape, NX,NY,NZ.") var matrix: String = "256,256,176"
    @Option(help: "Timed repetitions per configuration (median reported).") var repetitions: Int = 10
    @Option(help: "FFT threads (default: all cores).") var threads: Int?

    func run() throws {
        let shape = try parseShape(matrix, option: "--matrix")
        if let threads { Parallelism.threadCount = threads }
        let report = try runFFTBenchmark(shape: shape, repetitions: repetitions)
        print("FFT benchmark: Float \(shape.x)×\(shape.y)×\(shape.z), \(report.threads) threads, median of \(repetitions)")
        print("| path | forward+inverse (ms) | planning (ms) | ratio to direct |")
        print("|---|---:|---:|---:|")
        var baseline = 0.0
        for row in report.rows {
            if row.label.hasPrefix("direct") { baseline = row.milliseconds }
            print("| \(row.label) | \(format(row.milliseconds)) | \(format(row.planningMilliseconds)) | \(format(row.milliseconds / baseline, digits: 3)) |")
        }
        let estimate = report.rows.first { $0.label == "direct FFTW (estimate)" }!.milliseconds
        let measure = report.rows.first { $0.label == "direct FFTW (measure)" }!.milliseconds
        print("MEASURE vs ESTIMATE execution (direct): \(format(measure / estimate, digits: 3))×")
    }
}
