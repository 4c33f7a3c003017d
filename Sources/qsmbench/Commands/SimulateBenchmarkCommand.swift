import ArgumentParser
import Foundation
import QSMCore
import QSMPhantom

struct SimulateBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Time and peak memory of simulating the head phantom (in memory, no files).",
        discussion: """
            Reports the phantom build and the simulation (fields, signal, magnitude/phase) separately, \
            the peak resident memory of the process (VmHWM), and the total time divided by one \
            forward+inverse r2c FFT of the padded grid measured in the same run, a ratio that \
            carries across machines. Targets for 256×256×176, 4 echoes: ≤ 10 s and ≤ 2 GB on 2 cores.
            """)

    @Option(help: "Matrix, NX,NY,NZ.") var matrix: String = "256,256,176"
    @Option(help: "Voxel size in mm.") var voxel: String = "1"
    @Option(help: "Number of echoes (4 ms apart).") var echoes: Int = 4
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        let shape = try parseShape(matrix, option: "--matrix")
        let voxelSize = try parseTriple(voxel, option: "--voxel")
        guard echoes >= 1 && echoes <= 64 else { throw QSMError.invalidOption("--echoes", "\(echoes) is outside 1…64") }
        if let threads {
            guard threads >= 1 else { throw QSMError.invalidOption("--threads", "\(threads) must be positive") }
            Parallelism.threadCount = threads
        }
        let grid = Grid(shape: shape, voxelSize: voxelSize)
        var acquisition = AcquisitionSettings()
        acquisition.echoTimes = (1...echoes).map { 0.004 * Double($0) }
        let fftsBefore = FFTStatistics.executedTransforms

        let t0 = now()
        let head = try Phantom.head(grid: grid)
        let t1 = now()
        let scan = try Simulator(acquisition: acquisition).run(head)
        let t2 = now()
        let peak = Self.peakResidentMegabytes()
        let transforms = FFTStatistics.executedTransforms - fftsBefore

        // Baseline: one forward+inverse r2c pair on the padded grid (plans are cached by now).
        let padded = scan.forward.paddedShape(for: shape)
        let fft = try FFT<Float>(shape: padded)
        var real = [Float](repeating: 0, count: fft.count)
        var spectrum = [Complex<Float>](repeating: .zero, count: fft.halfCount)
        for i in stride(from: 0, to: real.count, by: 97) { real[i] = 1 }
        let pair = median(3) {
            real.withUnsafeBufferPointer { r in spectrum.withUnsafeMutableBufferPointer { fft.forward(r, into: $0) } }
            spectrum.withUnsafeMutableBufferPointer { s in real.withUnsafeMutableBufferPointer { fft.inverse(s, into: $0) } }
        }
        let total = t2 - t0
        print("Simulate benchmark: head \(grid.shapeText) @ \(voxelSize.x) mm, \(echoes) echoes, \(Parallelism.threadCount) threads")
        print("| step | time (ms) |")
        print("|---|---:|")
        print("| head phantom (labels, partial volume) | \(format(t1 - t0)) |")
        print("| simulation (2 fields on \(padded.x)×\(padded.y)×\(padded.z), signal, magnitude/phase) | \(format(t2 - t1)) |")
        print("| total | \(format(total)) |")
        print("| baseline: one forward+inverse FFT pair on the padded grid | \(format(pair)) |")
        print("total ÷ FFT pair: \(format(total / pair, digits: 2))× (\(transforms) FFTs executed in the simulation)")
        print("peak resident memory (VmHWM): \(format(peak, digits: 0)) MB")
    }

    /// VmHWM from /proc/self/status in MB (0 where unavailable).
    static func peakResidentMegabytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.split(separator: " ").compactMap { Double($0) }
            if let kilobytes = digits.first { return kilobytes / 1024 }
        }
        return 0
    }
}
