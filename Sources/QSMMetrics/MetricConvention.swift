/// A named set of metric definitions; recorded with every score so two labs can compare numbers.
///
/// Every convention scores the reconstruction and the truth with both set to 0 outside the
/// evaluation mask (as qsm-ci `score_arrays` does), so voxels a method eroded count as 0.
public enum MetricConvention: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    /// qsmbench's own: the QSM-CI-compatible primary set recommended by the shared reference
    /// (QSM.md §11) — demeaned NRMSE, detrended NRMSE (inverse fit), qsm-ci HFEN and XSIM — with
    /// numerically stable (centred) sums, SSIM averaged over the mask, regions clipped to the mask.
    ///
    /// Why: QSM-CI is the only running public leaderboard and its definitions are the challenge 2.0
    /// ones (demeaning makes scores independent of the unknowable χ reference), so a number from
    /// `default` can be set beside a leaderboard entry. It departs from `qsm-ci` only where qsm-ci
    /// is fragile, never in a way that moves a well-posed score beyond rounding: non-finite
    /// reconstruction voxels are an error instead of silent zeros, correlations and fits use centred
    /// sums, constant maps give undefined (null) errors, every region and label average stays
    /// inside the mask, and SSIM (not a qsm-ci metric) is averaged over the mask, not the grid.
    case `default`
    /// 2016 reconstruction challenge: RMSE without demeaning, 15³ zero-sum LoG HFEN over the
    /// grid, `ssim_index3d.m`-lineage SSIM on a joint 0–255 rescale.
    case challenge2016
    /// QSM challenge 2.0 (2019): demeaned/detrended NRMSE with eroded tissue and DGM regions.
    case challenge2019
    /// Reproduces qsm-ci 0.6.2 `score_arrays` (the QSM-CI leaderboard), quirks included.
    case qsmCI = "qsm-ci"

    /// The CLI spelling (`default`, `challenge2016`, `challenge2019`, `qsm-ci`).
    public var description: String { rawValue }

    /// What each reported key means under this convention (stored in the JSON as `definitions`).
    public var definitions: [String: String] {
        let rmse = "rmse: 100·‖r−t‖/‖t‖ over the mask, no demeaning (2016 challenge compute_rmse.m)"
        let demeaned = "nrmse_demeaned: 100·‖r′−t′‖/‖t′‖, r′ = r − mean_M(r), t′ = t − mean_M(t) (challenge 2.0)"
        let inverse = "nrmse_detrended: OLS r′ ≈ a·t′ + b, c = (r′ − b)/a, 100·‖c−t′‖/‖t′‖ (variant C, QSM.rs/qsm-ci)"
        let nmi = "nmi: (H(r)+H(t))/H(r,t) over mask voxels, 100×100 histogram on each map's own range (scikit-image)"
        let hfenQSMCI = "hfen: scipy gaussian_laplace σ 1.5 truncate 5 (17 taps, reflect), norms over the mask (qsm-ci)"
        let hfen2016 = "hfen: 15³ zero-sum LoG σ 1.5, zero padding, norms over the whole grid (2016 compute_hfen.m)"
        let xsimQSMCI = "xsim: 5³ uniform window truncated at the grid border, C1 1e-4, C2 1e-6, mean over mask voxels with positive denominator (QSM.rs/qsm-ci)"
        let xsimFANSI = "xsim: 7³ Gaussian σ 1.5, zero padding, L 1, K 0.01/0.001, mean over the mask (FANSI compute_xsim.m 2019)"
        let ssimIndex3d = "ssim: both maps rescaled to 0–255 by their joint min/max, 5³ Gaussian σ 1.5, zero padding, K 0.01/0.03, L 255, mean over the mask (ssim_index3d.m lineage; the original 2016 rescaling rule is unverified)"
        var d: [String: String] = [
            "rmse": rmse, "nrmse_demeaned": demeaned, "nmi": nmi,
            "coverage": "coverage: fraction of mask voxels whose reconstruction is finite and non-zero",
            "masking": "both maps set to 0 outside the mask before any filter",
        ]
        switch self {
        case .default:
            d["nrmse"] = "nrmse: = nrmse_demeaned"
            d["nrmse_detrended"] = inverse + "; centred sums"
            d["hfen"] = hfenQSMCI
            d["xsim"] = xsimQSMCI
            d["ssim"] = "ssim: scikit-image Gaussian window (σ 1.5, 11 taps, reflect), K 0.01/0.03, L = max(t) − min(t) over the grid, native ppm, mean of the map over the mask"
            d["cc"] = "cc: Pearson r over the mask, centred sums"
            d["regions"] = "regions: whole_brain = mask; tissue = mask ∩ labels 7–9; dgm = mask ∩ labels 1–6; blood = dilate₃ₓ₃ₓ₃(mask ∩ label 11) ∩ mask; label means over mask voxels"
        case .challenge2016:
            d["nrmse"] = "nrmse: = rmse (the 2016 challenge did not demean)"
            d["nrmse_detrended"] = inverse + "; centred sums (not part of the 2016 challenge)"
            d["hfen"] = hfen2016
            d["xsim"] = xsimFANSI
            d["ssim"] = ssimIndex3d
            d["cc"] = "cc: Pearson r over the mask, centred sums"
            d["regions"] = "regions: as challenge2019 (the 2016 challenge had no regional metrics)"
        case .challenge2019:
            d["nrmse"] = "nrmse: = nrmse_demeaned (challenge 2.0 'rmse')"
            d["nrmse_detrended"] = inverse + "; centred sums (the released compute_rmse_detrend_v1.m was not inspectable; variant C is the stated intent of v0 and what QSM.rs ported; A and B are in nrmse_detrended_variants)"
            d["hfen"] = hfen2016 + " (not a challenge 2.0 metric)"
            d["xsim"] = xsimFANSI + " (not a challenge 2.0 metric)"
            d["ssim"] = ssimIndex3d + " (not a challenge 2.0 metric)"
            d["cc"] = "cc: Pearson r over the mask, centred sums"
            d["regions"] = "regions: tissue = erode₃ₓ₃ₓ₃(mask ∩ labels 7–9); dgm = erode(mask ∩ labels 1–6); blood = dilate(mask ∩ label 11), not re-clipped (challenge 2.0 evaluation driver)"
        case .qsmCI:
            d["nrmse"] = "nrmse: = nrmse_demeaned (qsm-ci 'nrmse')"
            d["nrmse_detrended"] = inverse + "; raw sums with qsm-ci's degenerate cases (qsm-ci 'nrmse_detrend')"
            d["hfen"] = hfenQSMCI
            d["xsim"] = xsimQSMCI
            d["ssim"] = "ssim: scikit-image structural_similarity return value (Gaussian σ 1.5, 11 taps, reflect, K 0.01/0.03, data_range = max(t) − min(t), mean over the grid minus a 5-voxel border); not a qsm-ci metric"
            d["cc"] = "cc: qsm-ci correlation, (nΣrt − ΣrΣt)/√(…) raw sums, 0 when undefined"
            d["regions"] = "regions: tissue = mask ∩ labels 7–9; dgm = mask ∩ labels 1–6; blood = dilate(mask ∩ label 11), not re-clipped; DGM slope and calcification use labels over the whole grid; non-finite reconstruction voxels are scored as 0 (qsm-ci score_arrays)"
        }
        return d
    }
}
