import Foundation
import QSMCore
import Testing
import QSMMetrics

/// Every value of shared/reference/metric-vectors/vectors.json (computed with scikit-image, scipy,
/// qsm-ci 0.6.2 and an independent numpy implementation) reproduced from the formula-defined inputs.
@Suite struct MetricVectorTests {
    let vectors: [String: Any]
    init() throws { vectors = try VectorVolumes.loadVectors() }

    func expected(_ recon: String) -> [String: Any] {
        (vectors["metrics"] as! [String: Any])[recon] as! [String: Any]
    }

    @Test func rebuiltVolumesMatchChecksums() throws {
        #expect(VectorVolumes.mask.insideCount == 2000)
        let truthSums = vectors["truth_checksums"] as! [String: Double]
        check(VectorVolumes.truth, truthSums, "truth")
        let reconSums = vectors["recon_checksums"] as! [String: [String: Double]]
        for name in VectorVolumes.reconNames { check(VectorVolumes.recon(name), reconSums[name]!, name) }
    }

    /// Sums of 7680 terms: 1e-12 relative leaves room for summation order (numpy is pairwise).
    func check(_ v: Volume<Double>, _ sums: [String: Double], _ label: String) {
        let values = v.voxels
        let observed: [String: Double] = [
            "sum": values.reduce(0, +), "sum_sq": values.reduce(0) { $0 + $1 * $1 },
            "sum_in_mask": VectorVolumes.inMask(v).reduce(0, +), "min": values.min()!, "max": values.max()!,
            "value_at_12_10_8": v[12, 10, 8],
        ]
        for (key, value) in sums {
            #expect(abs(observed[key]! - value) <= 1e-12 * max(1, abs(value)), "\(label).\(key): \(observed[key]!) vs \(value)")
        }
    }

    @Test(arguments: VectorVolumes.reconNames)
    func pointwiseMetrics(_ name: String) {
        let e = expected(name)
        let r = VectorVolumes.recon(name), t = VectorVolumes.truth
        let rm = VectorVolumes.inMask(r), tm = VectorVolumes.inMask(t)
        let values: [String: Double?] = [
            "rmse_2016_masked": RMSE.percent(recon: rm, truth: tm),
            "rmse_2016_full_volume": RMSE.percent(recon: r.voxels, truth: t.voxels),
            "nrmse_demeaned": NRMSE.demeaned(recon: rm, truth: tm),
            "nrmse_detrended_qsmci": NRMSE.detrended(recon: rm, truth: tm, .inverseFit),
            "nrmse_detrended_v0_truth_on_recon": NRMSE.detrended(recon: rm, truth: tm, .truthOnRecon),
            "nrmse_detrended_v0_forward_applied": NRMSE.detrended(recon: rm, truth: tm, .forwardApplied),
            "detrend_slope_recon_on_truth": NRMSE.slope(recon: rm, truth: tm),
            "pearson": PearsonCorrelation.coefficient(recon: rm, truth: tm),
            "pearson_qsmci": PearsonCorrelation.coefficient(recon: rm, truth: tm, formula: .rawSums),
        ]
        for (key, value) in values {
            let want = e[key] as! Double
            #expect(agrees(value, want), "\(name).\(key): \(String(describing: value)) vs \(want)")
        }
        // The raw-sum (qsm-ci) fit gives the same detrended value.
        let raw = NRMSE.detrended(recon: rm, truth: tm, .inverseFit, formula: .rawSums)
        #expect(agrees(raw, e["nrmse_detrended_qsmci"] as! Double))
    }

    @Test(arguments: VectorVolumes.reconNames)
    func neighbourhoodMetrics(_ name: String) {
        let e = expected(name)
        let r = VectorVolumes.recon(name), t = VectorVolumes.truth, m = VectorVolumes.mask
        let range = t.voxels.max()! - t.voxels.min()!
        var values: [String: Double?] = [
            "hfen_2016_full_volume": HFEN(kernel: .challenge2016, support: .grid).percent(recon: r, truth: t, mask: m),
            "hfen_2016_kernel_mask_norm": HFEN(kernel: .challenge2016, support: .mask).percent(recon: r, truth: t, mask: m),
            "hfen_qsmci": HFEN(kernel: .qsmCI, support: .mask).percent(recon: r, truth: t, mask: m),
            "ssim_skimage_raw": SSIM.scikitImage(dataRange: range).mean(r, t, mask: m),
            "ssim_skimage_raw_mean_over_mask": SSIM.scikitImage(dataRange: range, averaging: .mask).mean(r, t, mask: m),
            "xsim_qsmci": XSIM.qsmCI.mean(r, t, mask: m),
            "xsim_fansi_v1_zero_pad": XSIM.fansi2019.mean(r, t, mask: m),
            "xsim_fansi_v2_replicate_pad": XSIM.fansi2022.mean(r, t, mask: m),
        ]
        for (tag, rescaling) in [("joint", IntensityRescaling.jointRange), ("truthrange", .truthRange)] {
            let (a, b) = rescaling.apply(recon: r.voxels, truth: t.voxels)!
            let ra = try! Volume(grid: r.grid, voxels: a), tb = try! Volume(grid: t.grid, voxels: b)
            values["ssim_skimage_255_\(tag)"] = SSIM.scikitImage(dataRange: 255).mean(ra, tb, mask: m)
            values["ssim_skimage_255_\(tag)_mean_over_mask"] = SSIM.scikitImage(dataRange: 255, averaging: .mask).mean(ra, tb, mask: m)
            if tag == "joint" { values["ssim_index3d_255_joint"] = SSIM.index3d.mean(ra, tb, mask: m) }
        }
        for (key, value) in values {
            let want = e[key] as! Double
            #expect(agrees(value, want), "\(name).\(key): \(String(describing: value)) vs \(want)")
        }
    }

    @Test(arguments: VectorVolumes.reconNames)
    func scorerReproducesConventions(_ name: String) throws {
        let e = expected(name)
        let r = VectorVolumes.recon(name), t = VectorVolumes.truth, m = VectorVolumes.mask
        let sa = e["qsmci_score_arrays"] as! [String: Double]
        let qsmci = try Scorer(convention: .qsmCI, toolVersion: "test").score(recon: r, truth: t, mask: m)
        let pairs: [(Double?, String)] = [(qsmci.nrmse, "nrmse"), (qsmci.nrmseDetrended, "nrmse_detrend"),
                                          (qsmci.hfen, "hfen"), (qsmci.cc, "correlation"), (qsmci.xsim, "xsim"),
                                          (qsmci.coverage, "coverage")]
        for (value, key) in pairs {
            #expect(agrees(value, sa[key]!), "qsm-ci \(name).\(key): \(String(describing: value)) vs \(sa[key]!)")
        }
        #expect(agrees(qsmci.ssim, e["ssim_skimage_raw"] as! Double))

        let standard = try Scorer(convention: .default, toolVersion: "test").score(recon: r, truth: t, mask: m)
        #expect(agrees(standard.rmse, e["rmse_2016_masked"] as! Double))
        #expect(agrees(standard.nrmse, e["nrmse_demeaned"] as! Double))
        #expect(agrees(standard.nrmseDetrended, e["nrmse_detrended_qsmci"] as! Double))
        #expect(agrees(standard.hfen, e["hfen_qsmci"] as! Double))
        #expect(agrees(standard.ssim, e["ssim_skimage_raw_mean_over_mask"] as! Double))
        #expect(agrees(standard.xsim, e["xsim_qsmci"] as! Double))
        #expect(agrees(standard.cc, e["pearson"] as! Double))

        let c2016 = try Scorer(convention: .challenge2016, toolVersion: "test").score(recon: r, truth: t, mask: m)
        #expect(agrees(c2016.rmse, e["rmse_2016_masked"] as! Double))
        #expect(agrees(c2016.nrmse, e["rmse_2016_masked"] as! Double))
        #expect(agrees(c2016.hfen, e["hfen_2016_full_volume"] as! Double))
        #expect(agrees(c2016.ssim, e["ssim_index3d_255_joint"] as! Double))
        #expect(agrees(c2016.xsim, e["xsim_fansi_v1_zero_pad"] as! Double))
        let variants = c2016.nrmseDetrendedVariants
        #expect(agrees(variants["truth_on_recon"] ?? nil, e["nrmse_detrended_v0_truth_on_recon"] as! Double))
        #expect(agrees(variants["forward_applied"] ?? nil, e["nrmse_detrended_v0_forward_applied"] as! Double))
    }

    /// qsm-ci's standalone hfen()/xsim() see the unmasked truth; score_arrays zeroes it first.
    @Test func qsmCIMaskingQuirk() throws {
        let quirk = vectors["qsmci_quirk"] as! [String: Any]
        let truth = VectorVolumes.base, recon = VectorVolumes.truth, m = VectorVolumes.mask
        let hfen = HFEN(kernel: .qsmCI, support: .mask).percent(recon: recon, truth: truth, mask: m)
        #expect(agrees(hfen, quirk["hfen_direct"] as! Double), "\(String(describing: hfen))")
        let xsim = XSIM.qsmCI.mean(recon, truth, mask: m)
        #expect(agrees(xsim, quirk["xsim_direct"] as! Double), "\(String(describing: xsim))")
        let sa = quirk["score_arrays"] as! [String: Double]
        let s = try Scorer(convention: .qsmCI, toolVersion: "test").score(recon: recon, truth: truth, mask: m)
        #expect(agrees(s.hfen, sa["hfen"]!) && agrees(s.xsim, sa["xsim"]!) && agrees(s.nrmse, sa["nrmse"]!))
        #expect(agrees(s.cc, sa["correlation"]!) && agrees(s.coverage, sa["coverage"]!))
    }
}
