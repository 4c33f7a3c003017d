import QSMCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Timings of every metric on one synthetic pair, with a baseline measured in the same run.
public struct MetricsBenchmarkReport: Sendable {
    /// One timed item.
    public struct Row: Sendable {
        /// What was timed.
        public var label: String
        /// Median wall time, ms.
        public var milliseconds: Double
        /// Median CPU time of the process (all threads), ms: less sensitive to other load.
        public var cpuMilliseconds: Double
    }
    /// Volume shape.
    public var shape: SIMD3<Int>
    /// Threads used by parallel loops.
    public var threads: Int
    /// Baseline: one sequential pass of Σ(r − t)² over the Double volumes, ms.
    public var baselineMilliseconds: Double
    /// Per-metric rows (Double maps), then one full `Scorer` run per convention (Float maps).
    public var rows: [Row]
}

/// Times each metric and each convention's full `Scorer.score` on a synthetic `shape` pair.
///
/// Truth: a smooth ellipsoidal pattern (±0.1 ppm) inside an ellipsoid mask filling ~half the grid,
/// with a label map of six DGM spheres; recon: 0.9·truth + 0.005 + seeded Gaussian noise (σ 0.01).
public func runMetricsBenchmark(shape: SIMD3<Int>, repetitions: Int) throws(QSMError) -> MetricsBenchmarkReport {
    let grid = Grid(shape: shape)
    var truth = Volume<Double>(zeros: grid), recon = truth
    var mask = Mask(grid: grid, repeating: false)
    var labels = Volume<Int>(grid: grid, repeating: 0)
    let noise = CounterGaussian(seed: 7)
    let c = SIMD3<Double>(Double(shape.x - 1), Double(shape.y - 1), Double(shape.z - 1)) / 2
    for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
        let i = grid.index(x, y, z)
        let p = (SIMD3<Double>(Double(x), Double(y), Double(z)) - c) / (c * 0.9)
        guard (p * p).sum() <= 1 else { continue }
        mask.voxels[i] = true
        let value = 0.1 * Double.sin(7 * p.x) * Double.cos(5 * p.y) + 0.05 * p.z
        truth.voxels[i] = value
        recon.voxels[i] = 0.9 * value + 0.005 + 0.01 * noise.pair(stream: 0, index: UInt64(i)).0
        for k in 0..<6 {
            let centre = SIMD3<Double>(Double(k % 3) - 1, Double(k / 3) - 0.5, 0) * 0.4
            if ((p - centre) * (p - centre)).sum() < 0.01 { labels.voxels[i] = k + 1 }
        }
    } } }

    let baseline = median(repetitions) {
        var sum = 0.0
        truth.withVoxels { t in recon.withVoxels { r in for i in 0..<t.count { let d = r[i] - t[i]; sum += d * d } } }
        precondition(sum.isFinite)
    }
    let (r, t) = Scorer.gather(recon.voxels, truth.voxels, mask.voxels)
    let range = Scorer.dataRange(truth.voxels) ?? 1
    var rows: [MetricsBenchmarkReport.Row] = []
    func time(_ label: String, _ body: () -> Void) {
        body()   // warm-up: plans, page faults of first allocations
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<max(1, repetitions) {
            let w = now(), c = processCPUMilliseconds()
            body()
            cpu.append(processCPUMilliseconds() - c)
            wall.append(now() - w)
        }
        rows.append(.init(label: label, milliseconds: wall.sorted()[wall.count / 2], cpuMilliseconds: cpu.sorted()[cpu.count / 2]))
    }
    time("gather mask voxels") { _ = Scorer.gather(recon.voxels, truth.voxels, mask.voxels) }
    time("rmse") { _ = RMSE.percent(recon: r, truth: t) }
    time("nrmse demeaned") { _ = NRMSE.demeaned(recon: r, truth: t) }
    time("nrmse detrended (inverse fit)") { _ = NRMSE.detrended(recon: r, truth: t, .inverseFit) }
    time("cc") { _ = PearsonCorrelation.coefficient(recon: r, truth: t) }
    time("nmi (100 bins)") { _ = NormalizedMutualInformation.value(recon: r, truth: t) }
    time("hfen (qsm-ci, 17 taps)") { _ = HFEN(kernel: .qsmCI, support: .mask).percent(recon: recon, truth: truth, mask: mask) }
    time("hfen (2016, 15 taps + box)") { _ = HFEN(kernel: .challenge2016, support: .grid).percent(recon: recon, truth: truth, mask: mask) }
    time("ssim (scikit-image, 11 taps)") { _ = SSIM.scikitImage(dataRange: range, averaging: .mask).mean(recon, truth, mask: mask) }
    time("ssim (index3d, 5 taps)") { _ = SSIM.index3d.mean(recon, truth, mask: mask) }
    time("xsim (qsm-ci, 5³ box)") { _ = XSIM.qsmCI.mean(recon, truth, mask: mask) }
    time("xsim (FANSI, 7 taps)") { _ = XSIM.fansi2019.mean(recon, truth, mask: mask) }
    // Full scores take Float maps, as read from NIfTI files.
    let reconFloat = recon.converted(to: Float.self), truthFloat = truth.converted(to: Float.self)
    for convention in MetricConvention.allCases {
        let scorer = Scorer(convention: convention, toolVersion: "benchmark")
        var failure: QSMError?
        time("score, convention \(convention) (with segmentation)") {
            do throws(QSMError) { _ = try scorer.score(recon: reconFloat, truth: truthFloat, mask: mask, segmentation: labels) }
            catch { failure = error }
        }
        if let failure { throw failure }
    }
    return MetricsBenchmarkReport(shape: shape, threads: Parallelism.threadCount, baselineMilliseconds: baseline, rows: rows)
}

/// CPU time consumed by this process so far (all threads), ms.
private func processCPUMilliseconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
}
