import ArgumentParser
import QSMCore
import QSMPipeline

struct PipelineBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Time every stage and the default pipeline: ms, FFT count, ratio to the FFT floor.")

    @Option(help: "Volume shape, NX,NY,NZ.") var matrix: String = "256,256,176"
    @Option(help: "Number of echoes.") var echoes: Int = 4
    @Option(help: "Iteration cap for iterative methods (RESHARP, iSMV, PDF, LBV and the iterative inversions).") var iterations: Int = 50
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Only rows whose label contains one of these words, comma-separated (e.g. tkd,default).") var only: String?
    @Flag(help: "Time each row's first run only (FFT plans made and fresh memory faulted in inside the timing); by default every row runs once untimed first, like the FFT reference.")
    var noWarmUp = false

    func run() throws {
        let shape = try parseShape(matrix, option: "--matrix")
        if let threads { Parallelism.threadCount = threads }
        let report = try runPipelineBenchmark(shape: shape, echoes: echoes, iterationCap: iterations,
                                              only: only?.split(separator: ",").map(String.init) ?? [], warmUp: !noWarmUp) {
            writeStandardError("  \($0)\n")
        }
        print("Pipeline benchmark: Float \(shape.x)×\(shape.y)×\(shape.z), \(report.echoes) echoes, \(report.threads) threads")
        print("One FFT (r2c or c2r; median of pairs timed before each stage in this run): \(format(report.fftMilliseconds)) ms wall, \(format(report.fftCPUMilliseconds)) ms CPU")
        print("FFT floor of a stage: Σ over its transforms of each one's time; padded, complex or Double transforms are timed against the volume's own in this run (the note lists them); a transform counts as one whole 3-D FFT even where it skips the plane transforms of empty or unneeded planes (the note gives the share skipped, the work done in whole transforms — the skipped planes' share of a transform measured in this run — and the time ÷ that smaller floor)")
        print(noWarmUp ? "Each row: its first run (plans and fresh memory included)"
                       : "Each row: the second of two runs (the first, untimed for the ratio, made the FFT plans and faulted memory in; its time is the 'first run' column)")
        print("| stage | time (ms) | first run (ms) | FFTs | time ÷ FFT floor | CPU (ms) | CPU ÷ FFT CPU floor | note |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for row in report.rows {
            let ratio = row.ratioToFFTFloor.map { format($0, digits: 2) } ?? "–"
            let cpuRatio = row.cpuRatioToFFTFloor.map { format($0, digits: 2) } ?? "–"
            let first = row.firstRunMilliseconds.map { "\(Int($0.rounded()))" } ?? "–"
            print("| \(row.label) | \(Int(row.milliseconds.rounded())) | \(first) | \(row.transforms) | \(ratio) | \(Int(row.cpuMilliseconds.rounded())) | \(cpuRatio) | \(row.note) |")
        }
    }
}
