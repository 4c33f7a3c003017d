import QSMCore

#if canImport(Glibc)
import Glibc
#endif

/// Per-stage timing at a realistic size: wall time, FFT count, and time ÷ the FFT floor (each
/// executed transform weighted by one transform of its own shape, type and precision).
public struct PipelineBenchmarkReport: Sendable {
    /// One timed stage (or the whole default pipeline).
    public struct Row: Sendable {
        /// Stage key and method (`bgremove vsharp`).
        public var label: String
        /// Wall time, ms (of the run after the untimed first run, when warming up).
        public var milliseconds: Double
        /// Wall time of the first run, ms, which also makes FFT plans and faults in fresh memory;
        /// nil without warm-up (then `milliseconds` is that run).
        public var firstRunMilliseconds: Double?
        /// 3-D FFTs executed.
        public var transforms: Int
        /// milliseconds ÷ Σ (transforms of a kind × one such FFT's ms); nil without FFTs.
        public var ratioToFFTFloor: Double?
        /// Process CPU time, ms (all threads).
        public var cpuMilliseconds: Double
        /// CPU time ÷ the CPU-time FFT floor: steadier than the wall ratio on a busy machine.
        public var cpuRatioToFFTFloor: Double?
        /// Notes (iteration caps; transforms of other shapes or types the floor counts).
        public var note: String
    }
    /// Volume shape.
    public var shape: SIMD3<Int>
    /// Echoes simulated.
    public var echoes: Int
    /// Threads used by FFTs and loops.
    public var threads: Int
    /// One Float r2c/c2r FFT of `shape`, ms: median over forward+inverse pairs timed before every stage.
    public var fftMilliseconds: Double
    /// CPU time of one FFT, ms, from the same pairs.
    public var fftCPUMilliseconds: Double
    /// The rows, stage order, default pipeline last.
    public var rows: [Row]
}

/// Times each stage's methods and the default pipeline on an analytic head-like phantom.
///
/// The phantom is closed-form (QSM.md §2.6 sphere fields, no FFT): an ellipsoidal brain (semi-axes
/// 0.38, 0.38, 0.35 of the grid) holding eight χ spheres, an air sphere (−9.4 ppm) outside it and a
/// linear gradient; magnitude M0·exp(−TE·R2*), wrapped phase at 3 T for TE = 4, 8, 12, … ms.
/// Iterative methods are capped at `iterationCap` iterations (the ratio to the FFT floor does not
/// depend on the count). With `only`, rows are kept whose label contains one of its words (stages
/// that feed them still run, untimed). With `warmUp`, each row runs twice and the second run is
/// the one timed and counted, as the FFT reference is timed on warm plans and memory; the first
/// run's time is reported beside it. `progress` receives one line per finished row.
public func runPipelineBenchmark(shape: SIMD3<Int>, echoes: Int = 4, iterationCap: Int = 50, only: [String] = [],
                                 warmUp: Bool = true,
                                 progress: (String) -> Void = { _ in }) throws(QSMError) -> PipelineBenchmarkReport {
    guard echoes >= 2 else { throw .invalidOption("--echoes", "\(echoes) is fewer than 2") }
    guard iterationCap >= 1 else { throw .invalidOption("--iterations", "\(iterationCap) is not positive") }
    let grid = Grid(shape: shape)
    let echoTimes = (1...echoes).map { 0.004 * Double($0) }
    let context = StageContext(echoTimes: echoTimes)
    let phantom = BenchmarkPhantom(grid: grid, echoTimes: echoTimes, context: context)

    // One FFT of this shape, sampled before every stage so the baseline sees the same machine load.
    // The inverse is timed without the 1/N pass: the floor is the transforms alone (the stages
    // fold 1/N into their spectral products).
    let fft = try FFT<Float>(shape: shape)
    var real = [Float](repeating: 0, count: fft.count)
    for i in stride(from: 0, to: real.count, by: 7) { real[i] = Float(i % 13) }
    var spectrum = [Complex<Float>](repeating: .zero, count: fft.halfCount)
    var wallSamples: [Double] = [], cpuSamples: [Double] = []
    func sampleFFT() {
        let t0 = now(), c0 = processCPUTime()
        real.withUnsafeBufferPointer { r in spectrum.withUnsafeMutableBufferPointer { fft.forward(r, into: $0) } }
        spectrum.withUnsafeMutableBufferPointer { s in
            real.withUnsafeMutableBufferPointer { fft.inverse(s, into: $0, normalized: false) }
        }
        wallSamples.append((now() - t0) / 2)
        cpuSamples.append((processCPUTime() - c0) / 2)
    }
    for _ in 0..<4 { sampleFFT() }
    wallSamples.removeFirst(); cpuSamples.removeFirst()          // the first pair includes planning

    struct Raw {
        var label: String, ms: Double, first: Double?, cpu: Double, count: Int, kinds: [FFTTransformKind: Int], note: String, iterations = 0
        var skippedPlanes = 0.0, skippedPasses = 0.0
    }
    var raw: [Raw] = []
    func selected(_ label: String) -> Bool { only.isEmpty || only.contains { label.contains($0) } }
    func measure<R>(_ label: String, note: String = "", iterations: Int = 0, _ body: () throws(QSMError) -> R) throws(QSMError) -> R {
        guard selected(label) else { return try body() }
        var first: Double?
        if warmUp {
            let t0 = now()
            _ = try body()
            first = now() - t0
        }
        sampleFFT()
        let f0 = FFTStatistics.executedTransforms, k0 = FFTStatistics.executedTransformsByKind, p0 = FFTStatistics.planeTransforms
        let s0 = FFTStatistics.skippedPlanePasses
        let t0 = now(), c0 = processCPUTime()
        let r = try body()
        let ms = now() - t0, cpu = processCPUTime() - c0, count = FFTStatistics.executedTransforms - f0
        var kinds: [FFTTransformKind: Int] = [:]
        for (kind, total) in FFTStatistics.executedTransformsByKind where total > k0[kind] ?? 0 {
            kinds[kind] = total - (k0[kind] ?? 0)
        }
        let p1 = FFTStatistics.planeTransforms, planes = (run: p1.run - p0.run, skipped: p1.skipped - p0.skipped)
        raw.append(Raw(label: label, ms: ms, first: first, cpu: cpu, count: count, kinds: kinds, note: note, iterations: iterations,
                       skippedPlanes: planes.skipped > 0 ? Double(planes.skipped) / Double(planes.run + planes.skipped) : 0,
                       skippedPasses: FFTStatistics.skippedPlanePasses - s0))
        progress("\(label): \(Int(ms.rounded())) ms, \(count) FFTs")
        return r
    }

    let mask = try measure("mask threshold") { () throws(QSMError) in
        try ThresholdMask().apply(magnitude: phantom.magnitude, context: context)
    }
    let unwrapped = try measure("unwrap laplacian") { () throws(QSMError) in
        try LaplacianUnwrapping().apply(wrappedPhase: phantom.phase, magnitude: phantom.magnitude, mask: mask, context: context)
    }
    if selected("unwrap region-growing") {
        _ = try measure("unwrap region-growing") { () throws(QSMError) in
            try RegionGrowingUnwrapping().apply(wrappedPhase: phantom.phase, magnitude: phantom.magnitude, mask: mask, context: context)
        }
    }
    let estimate = try measure("combine linear-fit") { () throws(QSMError) in
        try WeightedLinearFit().apply(unwrappedPhase: unwrapped, magnitude: phantom.magnitude, mask: mask, context: context)
    }
    let total = estimate.totalField
    var resharp = RESHARP.Parameters(); resharp.maxIterations = min(resharp.maxIterations, iterationCap)
    var ismv = ISMV.Parameters(); ismv.maxIterations = min(ismv.maxIterations, iterationCap)
    var pdf = PDF.Parameters(); pdf.maxIterations = iterationCap
    var lbv = LBV.Parameters(); lbv.maxIterations = min(lbv.maxIterations, iterationCap)
    let methods: [(any BackgroundRemoval, String)] = [
        (SHARP(), ""), (VSHARP(), ""), (RESHARP(resharp), "≤ \(resharp.maxIterations) iterations"),
        (ISMV(ismv), "≤ \(ismv.maxIterations) iterations"), (PDF(pdf), "≤ \(pdf.maxIterations) iterations"),
        (LBV(lbv), "≤ \(lbv.maxIterations) CG iterations"),
    ]
    var local: LocalField?
    for (method, note) in methods where method is VSHARP || selected("bgremove \(type(of: method).name)") {
        let result = try measure("bgremove \(type(of: method).name)", note: note) { () throws(QSMError) in
            try method.apply(totalField: total, mask: mask, context: context)
        }
        if method is VSHARP { local = result }
    }
    let localField = local!
    let chi = try measure("inversion tkd") { () throws(QSMError) in
        try TKD().apply(localField: localField.field, mask: localField.mask, context: context)
    }
    // Every other inversion on the same local field; iterative ones capped (the ratio to the FFT
    // floor does not depend on the count; MEDI runs ≤ 3 Gauss–Newton steps of ≤ cap CG iterations).
    let caps: [String: [String]] = [
        "tv": ["maxIterations=\(iterationCap)"], "rts": ["maxIterations=\(min(20, iterationCap))"],
        "ndi": ["maxIterations=\(iterationCap)"], "lsqr": ["maxIterations=\(iterationCap)"],
        "medi": ["maxIterations=3", "cgMaxIterations=\(iterationCap)"], "tgv": ["maxIterations=\(iterationCap)"],
    ]
    for name in MethodRegistry.names(of: .inversion) where name != TKD.name && selected("inversion \(name)") {
        let settings = try (caps[name] ?? []).map { (text: String) throws(QSMError) in
            try ParameterSetting(parsing: "inversion.\(text)")
        }
        let method = try MethodRegistry.inversion(name, settings: settings)
        // TGV-QSM is stencil-only (no FFT floor): its note gives wall time per iteration in FFT units.
        let perIteration = name == TGV.name ? iterationCap : 0
        _ = try measure("inversion \(name)", note: (caps[name] ?? []).joined(separator: ", "), iterations: perIteration) { () throws(QSMError) in
            try method.apply(localField: localField.field, mask: localField.mask, context: context)
        }
    }
    if selected("reference mean") {
        _ = try measure("reference mean") { () throws(QSMError) in
            try MeanReference().apply(susceptibility: chi, mask: localField.mask, segmentation: nil, context: context)
        }
    }
    let pipeline = try Pipeline()
    if selected("default pipeline") {
        let result = try measure("default pipeline") { () throws(QSMError) in
            try pipeline.run(PipelineInputs(wrappedPhase: phantom.phase, magnitude: phantom.magnitude), context: context)
        }
        // The stages' own times within the run, for attributing the ratio.
        raw[raw.count - 1].note = result.records.map { "\($0.method) \(Int($0.milliseconds.rounded()))" }.joined(separator: " → ") + " ms"
    }
    let one = middle(wallSamples), oneCPU = middle(cpuSamples)
    let planeShare = try planePassShare(shape: shape)
    // The floor weights each transform by its own kind's time: padded shapes, complex or Double
    // transforms cost more (or less) than one Float r2c of the volume. Each other kind is timed
    // here against the main shape, interleaved, and enters as that ratio times the main time, so
    // the load when it was timed does not matter.
    let main = FFTTransformKind(shape: shape, complex: false, double: false)
    var times: [FFTTransformKind: (wall: Double, cpu: Double)] = [main: (one, oneCPU)]
    for kind in Set(raw.flatMap { $0.kinds.keys }) where times[kind] == nil {
        let relative = try kind.double ? relativeTransformTime(Double.self, kind, to: main)
            : relativeTransformTime(Float.self, kind, to: main)
        times[kind] = (one * relative.wall, oneCPU * relative.cpu)
    }
    let rows = raw.map { r in
        var wallFloor = 0.0, cpuFloor = 0.0
        for (kind, count) in r.kinds {
            wallFloor += Double(count) * times[kind]!.wall
            cpuFloor += Double(count) * times[kind]!.cpu
        }
        let others = r.kinds.filter { $0.key != main }.sorted { $0.value > $1.value }.map { kind, count in
            "\(count) × \(kind.shape.x)×\(kind.shape.y)×\(kind.shape.z)\(kind.complex ? " c2c" : "")\(kind.double ? " Double" : "") at \(format(times[kind]!.wall)) ms"
        }
        var notes = [r.note].filter { !$0.isEmpty }
        if !others.isEmpty { notes.append("floor counts " + others.joined(separator: ", ")) }
        // Fused transforms skip the plane transforms of planes without data or wanted output, so
        // such a stage can beat its floor of full transforms: say how much was skipped.
        // Against the floor of the work done: each skipped plane pass takes its share of one
        // transform's time (measured below; the rest is the column pass) off the floor.
        if r.skippedPlanes > 0 {
            let equivalent = Double(r.count) - planeShare * r.skippedPasses
            let pruned = r.ms / (wallFloor * equivalent / Double(r.count))
            notes.append("\(Int((r.skippedPlanes * 100).rounded())) % of fused plane transforms skipped (empty or unneeded planes): "
                         + "≈ \(format(equivalent)) transforms' work, time ÷ that floor \(format(pruned, digits: 2))")
        }
        // Stencil methods (TGV) run no FFT: give their cost per iteration in units of one FFT.
        if r.iterations > 0 && r.count == 0 {
            notes.append("\(Double(Int(r.ms / (Double(r.iterations) * one) * 100)) / 100) FFTs' time per iteration")
        }
        return PipelineBenchmarkReport.Row(label: r.label, milliseconds: r.ms, firstRunMilliseconds: r.first, transforms: r.count,
                                           ratioToFFTFloor: r.count > 0 ? r.ms / wallFloor : nil,
                                           cpuMilliseconds: r.cpu,
                                           cpuRatioToFFTFloor: r.count > 0 ? r.cpu / cpuFloor : nil,
                                           note: notes.joined(separator: "; "))
    }
    return PipelineBenchmarkReport(shape: shape, echoes: echoes, threads: Parallelism.threadCount,
                                   fftMilliseconds: one, fftCPUMilliseconds: oneCPU, rows: rows)
}

/// The share of a fused transform's time spent in its plane passes: 1 − (a filter with every plane
/// skipped, i.e. its column pass alone) ÷ (the full filter), medians of alternated runs. The column
/// pass without plane data neither reads nor writes planes, so the share is if anything high and
/// the floor of the work done low: the ratio to it errs on the side of more overhead.
private func planePassShare(shape: SIMD3<Int>) throws(QSMError) -> Double {
    let fft = try FFT<Float>(shape: shape)
    var spectrum = [Complex<Float>](repeating: .zero, count: fft.halfCount)
    var volume = [Float](repeating: 0, count: fft.count)
    for i in stride(from: 0, to: volume.count, by: 7) { volume[i] = Float(i % 13) }
    let none = PlaneSupport(depth: shape.z, ranges: []), planeSize = shape.x * shape.y
    var full: [Double] = [], columns: [Double] = []
    for _ in 0..<5 {
        for skip in [false, true] {
            let t0 = now()
            volume.withUnsafeMutableBufferPointer { vb in spectrum.withUnsafeMutableBufferPointer { sb in
                let v = SendablePointer(vb.baseAddress!)
                fft.filter(spectrum: sb, normalized: false, inputPlanes: skip ? none : nil, outputPlanes: skip ? none : nil, load: { z, plane in
                    plane.baseAddress!.update(from: v.base + z * planeSize, count: planeSize)
                }, product: { _ in }, store: { z, plane in
                    (v.base + z * planeSize).update(from: plane.baseAddress!, count: planeSize)
                })
            } }
            if skip { columns.append(now() - t0) } else { full.append(now() - t0) }
        }
    }
    full.removeFirst(); columns.removeFirst()        // the first pair made the plans
    return min(1, max(0, 1 - middle(columns) / middle(full)))
}

/// Wall and CPU time of one transform of `kind` relative to one Float r2c of `main`: medians over
/// forward+inverse pairs of each, alternated, after a planning pair (no 1/N pass, as for `main`).
private func relativeTransformTime<T: FFTScalar>(_: T.Type, _ kind: FFTTransformKind, to main: FFTTransformKind)
    throws(QSMError) -> (wall: Double, cpu: Double) {
    let fft = try FFT<T>(shape: kind.shape), mainFFT = try FFT<Float>(shape: main.shape)
    var complexData = [Complex<T>](repeating: .zero, count: kind.complex ? fft.count : 0)
    var real = [T](repeating: 0, count: kind.complex ? 0 : fft.count)
    var spectrum = [Complex<T>](repeating: .zero, count: kind.complex ? 0 : fft.halfCount)
    var mainReal = [Float](repeating: 0, count: mainFFT.count)
    var mainSpectrum = [Complex<Float>](repeating: .zero, count: mainFFT.halfCount)
    var wall: [Double] = [], cpu: [Double] = [], mainWall: [Double] = [], mainCPU: [Double] = []
    for _ in 0..<4 {
        var t0 = now(), c0 = processCPUTime()
        if kind.complex {
            complexData.withUnsafeMutableBufferPointer { fft.transform($0, .forward); fft.transform($0, .backward, normalized: false) }
        } else {
            real.withUnsafeBufferPointer { r in spectrum.withUnsafeMutableBufferPointer { fft.forward(r, into: $0) } }
            spectrum.withUnsafeMutableBufferPointer { s in real.withUnsafeMutableBufferPointer { fft.inverse(s, into: $0, normalized: false) } }
        }
        wall.append(now() - t0); cpu.append(processCPUTime() - c0)
        t0 = now(); c0 = processCPUTime()
        mainReal.withUnsafeBufferPointer { r in mainSpectrum.withUnsafeMutableBufferPointer { mainFFT.forward(r, into: $0) } }
        mainSpectrum.withUnsafeMutableBufferPointer { s in mainReal.withUnsafeMutableBufferPointer { mainFFT.inverse(s, into: $0, normalized: false) } }
        mainWall.append(now() - t0); mainCPU.append(processCPUTime() - c0)
    }
    wall.removeFirst(); cpu.removeFirst(); mainWall.removeFirst(); mainCPU.removeFirst()    // planning
    return (middle(wall) / middle(mainWall), middle(cpu) / middle(mainCPU))
}

private func format(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

private func format(_ value: Double, digits: Int) -> String {
    precondition(digits == 2)
    let hundredths = Int((value * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
}

private func middle(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// CPU time of this process (all threads), ms.
private func processCPUTime() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
}

/// The closed-form phantom of `runPipelineBenchmark`.
struct BenchmarkPhantom {
    let phase: Volume<Float>
    let magnitude: Volume<Float>

    init(grid: Grid, echoTimes: [Double], context: StageContext) {
        let n = grid.shape
        let c = (SIMD3<Double>(Double(n.x), Double(n.y), Double(n.z)) - 1) / 2
        let semi = SIMD3<Double>(0.38 * Double(n.x), 0.38 * Double(n.y), 0.35 * Double(n.z))
        // (centre offset as a fraction of the semi-axes, radius as a fraction of the smallest semi-axis, Δχ ppm)
        var sources: [(SIMD3<Double>, Double, Double)] = []
        let inner: [(SIMD3<Double>, Double, Double)] = [
            (SIMD3(0.3, 0.1, 0.2), 0.12, 0.10), (SIMD3(-0.35, 0.2, -0.1), 0.10, -0.05),
            (SIMD3(0.1, -0.4, 0.3), 0.08, 0.15), (SIMD3(-0.2, -0.3, -0.4), 0.09, 0.08),
            (SIMD3(0.45, 0.35, -0.3), 0.06, 0.20), (SIMD3(0, 0.5, 0), 0.07, -0.04),
            (SIMD3(-0.5, -0.1, 0.4), 0.05, 0.12), (SIMD3(0.2, 0.2, -0.55), 0.06, 0.06),
        ]
        let smallest = semi.min()
        for (o, r, chi) in inner { sources.append((c + o * semi, r * smallest, chi)) }
        sources.append((c + SIMD3(0, semi.y + 0.12 * smallest + 4, -0.3 * semi.z), 0.12 * smallest, -9.4))
        let spheres = sources
        let count = grid.count, echoes = echoTimes.count
        var phase = [Float](repeating: 0, count: count * echoes), magnitude = phase
        let ppmToRadianPerSecond = 1 / context.ppmPerRadianPerSecond
        phase.withUnsafeMutableBufferPointer { pb in magnitude.withUnsafeMutableBufferPointer { mb in
            let pp = SendablePointer(pb.baseAddress!), mp = SendablePointer(mb.baseAddress!)
            parallelFor(0..<n.z) { zs in
                for z in zs { for y in 0..<n.y { for x in 0..<n.x {
                    let p = SIMD3(Double(x), Double(y), Double(z))
                    let q = (p - c) / semi
                    let inside = (q * q).sum() <= 1
                    var field = 0.02 * (p.z - c.z) / Double(n.z) + 0.01 * (p.x - c.x) / Double(n.x)
                    for (centre, radius, chi) in spheres {
                        let d = p - centre
                        let r2 = (d * d).sum()
                        if r2 > radius * radius {
                            let r = r2.squareRoot(), cosine = d.z / r
                            field += chi / 3 * (radius / r) * (radius / r) * (radius / r) * (3 * cosine * cosine - 1)
                        }
                    }
                    let i = x + n.x * (y + n.y * z)
                    let m0 = inside ? 1.0 : 0.03, r2star = inside ? 25.0 : 50.0
                    for (e, te) in echoTimes.enumerated() {
                        let angle = field * ppmToRadianPerSecond * te
                        pp[e * count + i] = Float(angle - 2 * Double.pi * (angle / (2 * Double.pi)).rounded())
                        mp[e * count + i] = Float(m0 * Double.exp(-te * r2star))
                    }
                } } }
            }
        } }
        self.phase = try! Volume(grid: grid, frames: echoes, voxels: phase)
        self.magnitude = try! Volume(grid: grid, frames: echoes, voxels: magnitude)
    }
}
