import ArgumentParser
import QSMCore
import QSMPipeline

struct PipelineBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Time every stage and the default pipeline: ms, FFT count, ratio to the FFT floor.")

    @Option(help: "Volume shape, NX,NY,NZ.") var matrix: String = "256,256,176"
    @Option(help: "Number of echoes.") var echoes: Int = 4
    @Option(help: "Iteration cap for iterative methods (RESHARP, iSMV, PDF, LBV).") var iterations: Int = 50
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        let shape = try parseShape(matrix, option: "--matrix")
        if let threads { Parallelism.threadCount = threads }
        let report = try runPipelineBenchmark(shape: shape, echoes: echoes, iterationCap: iterations) {
            writeStandardError("  \($0)\n")
        }
        print("Pipeline benchmark: Float \(shape.x)×\(shape.y)×\(shape.z), \(report.echoes) echoes, \(report.threads) threads")
        print("One FFT (r2c/c2r, mean of forward and inverse, measured in this run): \(format(report.fftMilliseconds)) ms")
        print("| stage | time (ms) | FFTs | time ÷ (FFTs × one FFT) | note |")
        print("|---|---:|---:|---:|---|")
        for row in report.rows {
            let ratio = row.ratioToFFTFloor.map { format($0, digits: 2) } ?? "–"
            print("| \(row.label) | \(String(Int(row.milliseconds.rounded()))) | \(row.transforms) | \(ratio) | \(row.note) |")
        }
    }
}
