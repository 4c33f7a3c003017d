import Foundation
import QSMCore
import QSMMetrics
import Testing

/// A Python that can import qsm-ci and scikit-image: `QSMBENCH_PYTHON`, else the worktree's
/// `.venv-metrics` (created by `python3 -m venv .venv-metrics && .venv-metrics/bin/pip install
/// numpy scipy scikit-image qsm-ci==0.6.2`). Nil when neither works: the tests are then skipped.
enum Peers {
    static let python: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = [ProcessInfo.processInfo.environment["QSMBENCH_PYTHON"],
                          root.appendingPathComponent(".venv-metrics/bin/python3").path].compactMap { $0 }
        return candidates.first { path in
            FileManager.default.isExecutableFile(atPath: path)
                && (try? run(path, ["-c", "import qsm_ci.qsm_eval, skimage.metrics"]))?.status == 0
        }
    }()

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }
}

@Suite(.enabled(if: Peers.python != nil, "no Python with qsm-ci 0.6.2 and scikit-image (set QSMBENCH_PYTHON or create .venv-metrics)"))
struct CrossCheckTests {
    /// A 40×36×32 head-like phantom with every challenge label, and a blurred, scaled, noisy
    /// reconstruction with a few non-finite voxels (which qsm-ci scores as 0).
    func volumes() -> (Volume<Double>, Volume<Double>, Mask, Volume<Int>) {
        let grid = Grid(shape: SIMD3(40, 36, 32))
        var truth = Volume<Double>(zeros: grid), mask = Mask(grid: grid, repeating: false)
        var labels = Volume<Int>(grid: grid, repeating: 0)
        var generator = SeededGenerator(seed: 2024)
        for z in 0..<32 { for y in 0..<36 { for x in 0..<40 {
            let p = SIMD3((Double(x) - 19.5) / 17, (Double(y) - 17.5) / 15, (Double(z) - 15.5) / 13)
            let radius = (p * p).sum().squareRoot()
            guard radius <= 1 else { continue }
            mask[x, y, z] = true
            labels[x, y, z] = radius > 0.85 ? 9 : (radius > 0.6 ? 8 : 7)
            truth[x, y, z] = [7: 0.02, 8: -0.03, 9: 0.05][labels[x, y, z]]! + 0.01 * Double.sin(Double(x) / 3)
            for k in 0..<6 {
                let c = SIMD3(Double(k % 3) - 1, Double(k / 3) - 0.5, 0.2) * 0.45
                if ((p - c) * (p - c)).sum() < 0.012 { labels[x, y, z] = k + 1; truth[x, y, z] = 0.03 * Double(k + 1) }
            }
            if abs(p.y + 0.3) < 0.04 && abs(p.z - 0.3) < 0.05 && abs(p.x) < 0.5 { labels[x, y, z] = 11; truth[x, y, z] = 0.35 }
            if ((p - SIMD3(0.3, 0.4, -0.3)) * (p - SIMD3(0.3, 0.4, -0.3))).sum() < 0.006 { labels[x, y, z] = 16; truth[x, y, z] = -1.2 }
        } } }
        var recon = truth
        for z in 0..<32 { for y in 0..<36 { for x in 1..<39 where mask[x, y, z] {
            recon[x, y, z] = 0.85 * (truth[x - 1, y, z] + truth[x, y, z] + truth[x + 1, y, z]) / 3 + 0.004
                + Double.random(in: -0.01...0.01, using: &generator)
        } } }
        recon[20, 18, 16] = .nan
        recon[21, 18, 16] = .infinity
        return (recon, truth, mask, labels)
    }

    func write<T>(_ values: [T], _ name: String, in directory: URL) throws -> String {
        let url = directory.appendingPathComponent(name)
        try values.withUnsafeBytes { try Data($0).write(to: url) }
        return url.path
    }

    /// Every qsm-ci 0.6.2 `score_arrays` value (with segmentation), scikit-image NMI and SSIM.
    /// Tolerance 1e-9 relative: both sides compute in Double with different summation orders
    /// (numpy pairwise, FFT-based HFEN here), which moves the last ~4 digits at most.
    @Test func matchesQSMCIAndScikitImage() throws {
        let (recon, truth, mask, labels) = volumes()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qsmbench-crosscheck-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/crosscheck.py").path
        let arguments = [script, "40", "36", "32",
                         try write(recon.voxels, "recon.f64", in: directory), try write(truth.voxels, "truth.f64", in: directory),
                         try write(mask.voxels.map { UInt8($0 ? 1 : 0) }, "mask.u8", in: directory),
                         try write(labels.voxels.map { Int32($0) }, "seg.i32", in: directory)]
        let result = try Peers.run(Peers.python!, arguments)
        try #require(result.status == 0, "crosscheck.py failed")
        let peer = try #require(try JSONSerialization.jsonObject(with: result.output) as? [String: Any])
        let q = try #require(peer["qsmci"] as? [String: Double])

        let s = try Scorer(convention: .qsmCI, toolVersion: "test").score(recon: recon, truth: truth, mask: mask, segmentation: labels)
        let ours: [String: Double?] = [
            "nrmse": s.nrmse, "nrmse_detrend": s.nrmseDetrended, "hfen": s.hfen, "correlation": s.cc, "xsim": s.xsim,
            "coverage": s.coverage, "nrmse_tissue": s.regions["tissue"]?.nrmseDetrended,
            "nrmse_blood": s.regions["blood"]?.nrmseDetrended, "nrmse_dgm": s.regions["dgm"]?.nrmseDetrended,
            "dgm_linearity": s.dgmLinearity, "calc_moment_dev": s.calcification?.momentDeviation,
            "calc_streak": s.calcification?.streak ?? nil,
        ]
        #expect(Set(q.keys) == Set(ours.keys))
        // The phantom exercises every branch: a visible slope error, calcification and coverage loss.
        #expect(q["dgm_linearity"]! > 0.01 && q["calc_moment_dev"]! > 0 && q["calc_streak"]! > 0 && q["coverage"]! < 1)
        for (key, expected) in q {
            expectClose(ours[key] ?? nil, expected, 1e-9)
        }
        expectClose(s.ssim, try #require(peer["ssim_skimage"] as? Double), 1e-9)
        let standard = try Scorer(convention: .qsmCI, toolVersion: "test").score(recon: recon, truth: truth, mask: mask)
        expectClose(standard.nmi, try #require(peer["nmi"] as? Double), 1e-9)

        // qsm-ci rounds its per-label statistics to 6 decimals and keeps labels with ≥ 10 voxels.
        let regions = try #require(peer["regions"] as? [String: Any])
        let reconStats = try #require(regions["recon"] as? [String: [String: Double]])
        let truthStats = try #require(regions["truth"] as? [String: [String: Double]])
        #expect(Set(reconStats.keys) == Set(s.labels.map { String($0.label) }))
        for stats in s.labels {
            let r = try #require(reconStats[String(stats.label)]), t = try #require(truthStats[String(stats.label)])
            #expect(Int(r["n"]!) == stats.voxels)
            for (a, b) in [(stats.reconMean, r["mean"]!), (stats.reconStd, r["std"]!), (stats.truthMean, t["mean"]!), (stats.truthStd, t["std"]!)] {
                #expect(abs(a - b) <= 5.1e-7, "label \(stats.label): \(a) vs \(b)")
            }
        }
    }
}
