import PropertyBased
import QSMCore
import QSMMetrics
import Testing

/// Random but reproducible inputs: a seeded smooth-plus-noise truth in an ellipsoid mask, on a grid
/// just large enough for scikit-image's 11-voxel SSIM window.
/// PropertyBased reports the failing seed, and `SeededGenerator` turns it into the same volumes.
enum RandomPair {
    static let grid = Grid(shape: SIMD3(16, 14, 12))

    static func mask() -> Mask {
        var m = Mask(grid: grid, repeating: false)
        for z in 0..<12 { for y in 0..<14 { for x in 0..<16 {
            let a = (Double(x) - 7.5) / 7, b = (Double(y) - 6.5) / 6, c = (Double(z) - 5.5) / 5
            m[x, y, z] = a * a + b * b + c * c <= 1
        } } }
        return m
    }

    /// (recon, truth), both zero outside the mask.
    static func volumes(seed: UInt64) -> (Volume<Double>, Volume<Double>) {
        var generator = SeededGenerator(seed: seed)
        let m = mask()
        var truth = Volume<Double>(zeros: grid), recon = truth
        let kx = Double.random(in: 0.3...1.2, using: &generator), ky = Double.random(in: 0.3...1.2, using: &generator)
        for i in 0..<grid.count where m.voxels[i] {
            let x = Double(i % 16), y = Double((i / 16) % 14)
            truth.voxels[i] = 0.1 * Double.sin(kx * x) * Double.cos(ky * y) + Double.random(in: -0.02...0.02, using: &generator)
            recon.voxels[i] = truth.voxels[i] + Double.random(in: -0.03...0.03, using: &generator)
        }
        return (recon, truth)
    }

    static func inMask(_ v: Volume<Double>, _ m: Mask) -> [Double] {
        zip(v.voxels, m.voxels).compactMap { $1 ? $0 : nil }
    }
}

@Suite struct MetricPropertyTests {
    /// Identical maps: every error exactly 0, every similarity 1 (NMI 2), in every convention.
    /// Tolerance 1e-12: the only rounding left is in the SSIM ratio and the correlation's square root.
    @Test func identicalInputsScorePerfectly() async throws {
        await propertyCheck(count: 20, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let (_, truth) = RandomPair.volumes(seed: seed)
            for convention in MetricConvention.allCases {
                let s = try Scorer(convention: convention, toolVersion: "test")
                    .score(recon: truth, truth: truth, mask: RandomPair.mask())
                for value in [s.rmse, s.nrmse, s.nrmseDemeaned, s.nrmseDetrended, s.hfen] {
                    #expect(abs(try #require(value)) < 1e-12, "\(convention) seed \(seed)")
                }
                for value in [s.ssim, s.xsim, s.cc] {
                    #expect(abs(try #require(value) - 1) < 1e-12, "\(convention) seed \(seed)")
                }
                #expect(abs(try #require(s.nmi) - 2) < 1e-12)
                #expect(s.coverage == 1)
            }
        }
    }

    /// Pearson, NMI, SSIM and XSIM are symmetric in their two arguments (to rounding, 1e-12).
    @Test func symmetricMetricsAreSymmetric() async {
        let m = RandomPair.mask()
        await propertyCheck(count: 20, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let (r, t) = RandomPair.volumes(seed: seed)
            let rm = RandomPair.inMask(r, m), tm = RandomPair.inMask(t, m)
            let pairs: [(Double?, Double?)] = [
                (PearsonCorrelation.coefficient(recon: rm, truth: tm), PearsonCorrelation.coefficient(recon: tm, truth: rm)),
                (NormalizedMutualInformation.value(recon: rm, truth: tm), NormalizedMutualInformation.value(recon: tm, truth: rm)),
                (SSIM.scikitImage(dataRange: 0.2).mean(r, t, mask: m), SSIM.scikitImage(dataRange: 0.2).mean(t, r, mask: m)),
                (SSIM.index3d.mean(r, t, mask: m), SSIM.index3d.mean(t, r, mask: m)),
                (XSIM.qsmCI.mean(r, t, mask: m), XSIM.qsmCI.mean(t, r, mask: m)),
                (XSIM.fansi2022.mean(r, t, mask: m), XSIM.fansi2022.mean(t, r, mask: m)),
            ]
            for (a, b) in pairs {
                guard let a, let b else { Issue.record("undefined metric, seed \(seed)"); continue }
                #expect(abs(a - b) <= 1e-12 * max(1, abs(a)), "seed \(seed): \(a) vs \(b)")
            }
        }
    }

    /// Adding a constant to either map inside the mask changes no demeaned/detrended NRMSE and no
    /// correlation. Tolerance 1e-9 relative: the offset (≤ 1 ppm) is ~10× the signal, so demeaning
    /// cancels ~1 digit and rounding of sums over ~1000 voxels stays far below this.
    @Test func demeanedMetricsIgnoreOffsets() async {
        let m = RandomPair.mask()
        await propertyCheck(count: 30, input: Gen.uint64(in: 0...UInt64.max), Gen.double(in: -1...1)) { seed, offset in
            let (r, t) = RandomPair.volumes(seed: seed)
            let rm = RandomPair.inMask(r, m), tm = RandomPair.inMask(t, m)
            let shifted = rm.map { $0 + offset }, shiftedTruth = tm.map { $0 - offset / 2 }
            for detrending in NRMSE.Detrending.allCases {
                let base = NRMSE.detrended(recon: rm, truth: tm, detrending)!
                expectClose(NRMSE.detrended(recon: shifted, truth: tm, detrending), base, 1e-9)
                expectClose(NRMSE.detrended(recon: rm, truth: shiftedTruth, detrending), base, 1e-9)
            }
            expectClose(NRMSE.demeaned(recon: shifted, truth: shiftedTruth), NRMSE.demeaned(recon: rm, truth: tm)!, 1e-9)
            expectClose(PearsonCorrelation.coefficient(recon: shifted, truth: shiftedTruth),
                        PearsonCorrelation.coefficient(recon: rm, truth: tm)!, 1e-9)
        }
    }

    /// Scaling the reconstruction by s (and offsetting it) leaves the detrended NRMSE of variants C
    /// (inverse fit) and A (truth on recon) unchanged; variant B, which applies the slope to r′,
    /// is not invariant, and the demeaned NRMSE is not either (checked for |s − 1| ≥ 0.2).
    @Test func detrendedMetricsIgnoreLinearScaling() async {
        let m = RandomPair.mask()
        await propertyCheck(count: 30, input: Gen.uint64(in: 0...UInt64.max), Gen.double(in: 0.2...3),
                            Gen.double(in: -0.5...0.5)) { seed, scale, offset in
            let (r, t) = RandomPair.volumes(seed: seed)
            let rm = RandomPair.inMask(r, m), tm = RandomPair.inMask(t, m)
            let scaled = rm.map { scale * $0 + offset }
            for detrending in [NRMSE.Detrending.inverseFit, .truthOnRecon] {
                expectClose(NRMSE.detrended(recon: scaled, truth: tm, detrending),
                            NRMSE.detrended(recon: rm, truth: tm, detrending)!, 1e-9)
            }
            expectClose(PearsonCorrelation.coefficient(recon: scaled, truth: tm),
                        PearsonCorrelation.coefficient(recon: rm, truth: tm)!, 1e-9)
            if abs(scale - 1) >= 0.2 {
                let before = NRMSE.demeaned(recon: rm, truth: tm)!, after = NRMSE.demeaned(recon: scaled, truth: tm)!
                #expect(abs(after - before) > 1e-3, "demeaned NRMSE should see a scale of \(scale)")
            }
        }
    }
}

func expectClose(_ actual: Double?, _ expected: Double, _ relative: Double,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else { Issue.record("undefined value", sourceLocation: sourceLocation); return }
    #expect(abs(actual - expected) <= relative * max(1, abs(expected)), "\(actual) vs \(expected)",
            sourceLocation: sourceLocation)
}
