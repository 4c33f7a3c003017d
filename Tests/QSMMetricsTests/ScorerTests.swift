import Foundation
import QSMCore
import QSMMetrics
import Testing

@Suite struct ScorerTests {
    let grid = Grid(shape: SIMD3(20, 18, 16))

    /// A box mask, six DGM cubes with truth means 0.02…0.12 ppm, tissue (label 8) elsewhere, a
    /// 3-voxel vessel line (label 11) and a 2³ calcification (label 16, −1 ppm) on a +0.001·x ramp.
    func phantom() -> (truth: Volume<Double>, mask: Mask, labels: Volume<Int>) {
        var truth = Volume<Double>(zeros: grid), mask = Mask(grid: grid, repeating: false)
        var labels = Volume<Int>(grid: grid, repeating: 0)
        for z in 1..<15 { for y in 1..<17 { for x in 1..<19 {
            mask[x, y, z] = true
            labels[x, y, z] = 8
            truth[x, y, z] = 0.001 * Double(x)
        } } }
        for k in 0..<6 {
            let x0 = 2 + 3 * (k % 3), y0 = 2 + 3 * (k / 3)
            for z in 2..<4 { for y in y0..<(y0 + 2) { for x in x0..<(x0 + 2) {
                labels[x, y, z] = k + 1
                truth[x, y, z] = 0.02 * Double(k + 1)
            } } }
        }
        for x in 3..<6 { labels[x, 12, 10] = 11; truth[x, 12, 10] = 0.3 }
        for z in 12..<14 { for y in 4..<6 { for x in 12..<14 { labels[x, y, z] = 16; truth[x, y, z] = -1 } } }
        return (truth, mask, labels)
    }

    /// Doubling χ in every DGM nucleus gives slope 2 exactly (|1 − slope| = 1); halving the
    /// calcification gives a moment deviation of ½·8 voxels·1 ppm = 4 and, with the rim untouched,
    /// zero residual streak. Tolerances 1e-12: sums of ≤ 500 exact binary fractions.
    @Test(arguments: MetricConvention.allCases)
    func regionalMetricsHaveKnownValues(_ convention: MetricConvention) throws {
        let (truth, mask, labels) = phantom()
        var recon = truth
        for i in 0..<grid.count {
            if (1...6).contains(labels.voxels[i]) { recon.voxels[i] *= 2 }
            if labels.voxels[i] == 16 { recon.voxels[i] = -0.5 }
        }
        let s = try Scorer(convention: convention, toolVersion: "test").score(recon: recon, truth: truth, mask: mask, segmentation: labels)
        #expect(abs(try #require(s.dgmSlope) - 2) < 1e-12)
        #expect(abs(try #require(s.dgmLinearity) - 1) < 1e-12)
        let calcification = try #require(s.calcification)
        #expect(abs(calcification.momentDeviation - 4) < 1e-12)
        #expect(abs(try #require(calcification.streak)) < 1e-12)
        if convention == .qsmCI {
            #expect(s.labels.first { $0.label == 1 } == nil)   // qsm-ci lists labels with ≥ 10 voxels
        } else {
            let caudate = try #require(s.labels.first { $0.label == 1 })
            #expect(caudate.voxels == 8 && caudate.name == "caudate")
            #expect(abs(caudate.truthMean - 0.02) < 1e-15 && abs(caudate.reconMean - 0.04) < 1e-15 && caudate.truthStd < 1e-15)
        }
        #expect(try #require(s.regions["whole_brain"]).voxels == mask.insideCount)
        let dgm = try #require(s.regions["dgm"]), tissue = try #require(s.regions["tissue"])
        let blood = try #require(s.regions["blood"])
        switch convention {
        case .challenge2016, .challenge2019:
            // Eroded by a 3³ cube, the isolated 2×2×2 nuclei vanish; tissue loses its rim and borders.
            #expect(dgm.voxels == 0 && dgm.nrmseDemeaned == nil)
            #expect(tissue.voxels < 14 * 16 * 18 - 48 - 8 - 3)
        case .default, .qsmCI:
            #expect(dgm.voxels == 48)
            #expect(tissue.voxels == 14 * 16 * 18 - 48 - 8 - 3)
        }
        // The 3-voxel vessel dilated by a 3³ cube: 5 × 3 × 3 voxels, all inside the mask.
        #expect(blood.voxels == 45)
    }

    @Test func errorsNameTheInput() throws {
        let (truth, mask, labels) = phantom()
        let scorer = Scorer(convention: .default, toolVersion: "test")
        let small = Volume<Double>(zeros: Grid(shape: SIMD3(20, 18, 15)))
        #expect(throws: QSMError.mismatch("recon", "shape 20×18×15 differs from truth (20×18×16)")) {
            try scorer.score(recon: small, truth: truth, mask: mask)
        }
        var moved = truth
        moved.grid.affine[0, 3] = 5
        #expect(throws: QSMError.self) { try scorer.score(recon: moved, truth: truth, mask: mask) }
        #expect(throws: QSMError.invalidFile("mask", "no voxel is inside the mask")) {
            try scorer.score(recon: truth, truth: truth, mask: Mask(grid: grid, repeating: false))
        }
        var broken = truth
        broken[5, 5, 5] = .nan
        #expect(throws: QSMError.invalidFile("recon", "non-finite value nan at voxel (5, 5, 5) inside the mask")) {
            try scorer.score(recon: broken, truth: truth, mask: mask)
        }
        #expect(throws: QSMError.invalidFile("truth", "non-finite value nan at voxel (5, 5, 5) inside the mask")) {
            try scorer.score(recon: truth, truth: broken, mask: mask)
        }
        let wrongLabels = Volume<Int>(grid: Grid(shape: SIMD3(20, 18, 15)), repeating: 0)
        #expect(throws: QSMError.self) { try scorer.score(recon: truth, truth: truth, mask: mask, segmentation: wrongLabels) }
        _ = labels
        // qsm-ci scores a non-finite reconstruction voxel as 0 and reports it as uncovered.
        let qsmci = try Scorer(convention: .qsmCI, toolVersion: "test").score(recon: broken, truth: truth, mask: mask)
        let zeroed = try Scorer(convention: .qsmCI, toolVersion: "test")
            .score(recon: { var v = truth; v[5, 5, 5] = 0; return v }(), truth: truth, mask: mask)
        #expect(qsmci.nrmse == zeroed.nrmse && qsmci.hfen == zeroed.hfen)
        #expect(qsmci.coverage < 1)
    }

    @Test func segmentationLabelsAreRoundedAndChecked() throws {
        var v = Volume<Float>(grid: grid, repeating: 0)
        v[1, 1, 1] = 2.4; v[2, 1, 1] = 2.5; v[3, 1, 1] = 3.5
        let labels = try Segmentation.labels(from: v)
        #expect(labels[1, 1, 1] == 2 && labels[2, 1, 1] == 2 && labels[3, 1, 1] == 4)
        v[4, 1, 1] = .infinity
        #expect(throws: QSMError.self) { try Segmentation.labels(from: v) }
    }

    /// The JSON carries every contract key, `null` for undefined values, and the convention.
    @Test func jsonHasTheContractKeys() throws {
        let (truth, mask, labels) = phantom()
        let s = try Scorer(convention: .challenge2019, toolVersion: "9.9").score(recon: truth, truth: truth, mask: mask, segmentation: labels)
        let data = try JSONEncoder().encode(s)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["rmse", "nrmse", "nrmse_demeaned", "nrmse_detrended", "hfen", "ssim", "xsim", "cc", "nmi",
                    "regions", "convention", "version", "definitions", "labels", "dgm_slope", "calcification"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["convention"] as? String == "challenge2019" && object["version"] as? String == "9.9")
        let decoded = try JSONDecoder().decode(Scores.self, from: data)
        #expect(decoded == s)
        // A constant truth leaves the normalised errors undefined: encoded as null, not dropped.
        let flat = Volume<Double>(grid: grid, repeating: 0.1)
        let undefined = try Scorer(toolVersion: "9.9").score(recon: truth, truth: flat, mask: mask)
        let json = try #require(String(data: try JSONEncoder().encode(undefined), encoding: .utf8))
        #expect(json.contains("\"nrmse_demeaned\":null"))
    }
}
