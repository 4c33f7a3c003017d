import CFFTW
import ComplexModule

#if canImport(Glibc)
import Glibc
#endif

/// Figures for the FFT benchmark: the wrapper against direct FFTW calls in the same process.
public struct FFTBenchmarkReport: Sendable {
    /// One measured configuration.
    public struct Row: Sendable {
        /// What was timed.
        public var label: String
        /// Median time of one forward+inverse pair, ms.
        public var milliseconds: Double
        /// Time to make the plans, ms (for the wrapper: its first call minus a median call).
        public var planningMilliseconds: Double
    }
    /// Shape transformed.
    public var shape: SIMD3<Int>
    /// Threads FFTW used.
    public var threads: Int
    /// The rows, direct FFTW first.
    public var rows: [Row]
}

/// Times forward+inverse r2c/c2r on a Float volume: through `FFT` and through raw FFTW plans.
///
/// The direct path is what a C program would do: plan once on its own arrays, execute with
/// `fftwf_execute`, scale by 1/N. The ratio wrapper/direct is the wrapper's overhead.
public func runFFTBenchmark(shape: SIMD3<Int>, repetitions: Int) throws(QSMError) -> FFTBenchmarkReport {
    let n = shape.x * shape.y * shape.z
    let half = (shape.x / 2 + 1) * shape.y * shape.z
    var rows: [FFTBenchmarkReport.Row] = []
    var generator = SeededGenerator(seed: 1)
    let input = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }

    for planning in FFTPlanning.allCases {
        // Direct FFTW, plans on fftwf_malloc'd arrays, as the FFTW manual shows.
        let real = fftwf_alloc_real(n)!, spectrum = fftwf_alloc_complex(half)!
        defer { fftwf_free(real); fftwf_free(spectrum) }
        fftwf_plan_with_nthreads(Int32(Parallelism.threadCount))
        let t0 = now()
        let forwardPlan = fftwf_plan_dft_r2c_3d(Int32(shape.z), Int32(shape.y), Int32(shape.x), real, spectrum, planning.flags)
        let inversePlan = fftwf_plan_dft_c2r_3d(Int32(shape.z), Int32(shape.y), Int32(shape.x), spectrum, real, planning.flags)
        let directPlanning = now() - t0
        guard let forwardPlan, let inversePlan else { throw .library("FFTW", "planning failed") }
        defer { fftwf_destroy_plan(forwardPlan); fftwf_destroy_plan(inversePlan) }
        for i in 0..<n { real[i] = input[i] }
        let scale = 1 / Float(n)
        func direct() {
            fftwf_execute(forwardPlan)
            fftwf_execute(inversePlan)
            let p = SendablePointer(real)
            parallelFor(0..<n) { r in for i in r { p[i] *= scale } }
        }

        // Through the wrapper, on Swift arrays, plan cache warm after the first call.
        let fft = try FFT<Float>(shape: shape, planning: planning)
        var spectrumArray = [Complex<Float>](repeating: .zero, count: half)
        // Same memory pattern as the direct path: one real array in and out, one spectrum.
        var data = input
        func wrapped() {
            data.withUnsafeMutableBufferPointer { d in
                spectrumArray.withUnsafeMutableBufferPointer { fft.forward(UnsafeBufferPointer(d), into: $0) }
                spectrumArray.withUnsafeMutableBufferPointer { fft.inverse($0, into: d) }
            }
        }
        let t1 = now()
        wrapped()
        let wrapperPlanning = now() - t1
        direct()
        // Alternate the two paths so drifting machine load affects both alike.
        var directTimes: [Double] = [], wrappedTimes: [Double] = []
        for _ in 0..<max(1, repetitions) {
            var t = now(); direct(); directTimes.append(now() - t)
            t = now(); wrapped(); wrappedTimes.append(now() - t)
        }
        rows.append(.init(label: "direct FFTW (\(planning.rawValue))", milliseconds: medianOf(directTimes),
                          planningMilliseconds: directPlanning))
        rows.append(.init(label: "qsmbench FFT (\(planning.rawValue))", milliseconds: medianOf(wrappedTimes),
                          planningMilliseconds: max(0, wrapperPlanning - medianOf(wrappedTimes))))
    }
    return FFTBenchmarkReport(shape: shape, threads: Parallelism.threadCount, rows: rows)
}

/// Milliseconds on a monotonic clock.
public func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
}

/// The median of `values` (upper median for even counts).
public func medianOf(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
}

/// Median wall time (ms) of `repetitions` calls of `body`, after one warm-up call.
public func median(_ repetitions: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<max(1, repetitions) {
        let t = now(); body(); times.append(now() - t)
    }
    times.sort()
    return times[times.count / 2]
}
