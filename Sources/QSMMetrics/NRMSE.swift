/// Demeaned and detrended normalised RMSE (percent), the QSM challenge 2.0 error measures.
///
/// QSM Challenge 2.0 Organization Committee (Bilgic B, Langkammer C, Marques JP, Meineke J,
/// Milovic C, Schweser F). QSM reconstruction challenge 2.0: Design and report of results.
/// MRM 2021;86:1241–1255. doi:10.1002/mrm.28754.
///
/// With r′ = r − mean(r), t′ = t − mean(t) over the scored voxels:
/// demeaned = 100·‖r′ − t′‖/‖t′‖. A constant truth (‖t′‖ ≤ 1e-12·‖t‖) leaves both undefined (nil),
/// where qsm-ci would divide by rounding noise. Detrended removes a linear fit first; three published
/// definitions disagree (shared reference QSM.md §9.2), so the variant is explicit.
public enum NRMSE {
    /// Which linear detrending is applied before the error norm.
    public enum Detrending: String, CaseIterable, Codable, Sendable {
        /// (C) fit r′ ≈ a·t′ + b, correct c = (r′ − b)/a (QSM.rs `nrmse_challenge`, qsm-ci).
        case inverseFit = "inverse_fit"
        /// (A) fit t′ ≈ a·r′ + b, use a·r′ + b (`compute_rmse_detrend_v0.m`, one public copy).
        case truthOnRecon = "truth_on_recon"
        /// (B) fit r′ ≈ a·t′ + b, use a·r′ + b (the other copy; applies the slope twice).
        case forwardApplied = "forward_applied"
    }

    /// 100·‖r′ − t′‖/‖t′‖ over paired values; nil when empty or t is constant.
    public static func demeaned(recon: [Double], truth: [Double]) -> Double? {
        guard let (meanR, meanT) = means(recon, truth) else { return nil }
        return percent(recon, truth, meanR, meanT) { $0 }
    }

    /// Detrended NRMSE over paired values; nil when empty, t constant or the fit degenerate.
    ///
    /// With `.rawSums` and `.inverseFit` the qsm-ci 0.6.2 degenerate cases are kept: ‖t′‖ < 1e-30
    /// gives nil, and |a| < 1e-30 returns the demeaned value.
    public static func detrended(recon: [Double], truth: [Double], _ detrending: Detrending,
                                 formula: LinearFit.Formula = .centred) -> Double? {
        guard let (meanR, meanT) = means(recon, truth) else { return nil }
        switch detrending {
        case .inverseFit:
            guard let fit = LinearFit(x: truth, minus: meanT, y: recon, minus: meanR, formula: formula) else { return nil }
            if formula == .rawSums && abs(fit.slope) < 1e-30 { return percent(recon, truth, meanR, meanT) { $0 } }
            guard fit.slope != 0 else { return nil }
            return percent(recon, truth, meanR, meanT) { ($0 - fit.intercept) / fit.slope }
        case .truthOnRecon:
            guard let fit = LinearFit(x: recon, minus: meanR, y: truth, minus: meanT, formula: formula) else { return nil }
            return percent(recon, truth, meanR, meanT) { fit.slope * $0 + fit.intercept }
        case .forwardApplied:
            guard let fit = LinearFit(x: truth, minus: meanT, y: recon, minus: meanR, formula: formula) else { return nil }
            return percent(recon, truth, meanR, meanT) { fit.slope * $0 + fit.intercept }
        }
    }

    /// The slope a of the OLS fit r′ ≈ a·t′ + b (how much the reconstruction scales χ).
    public static func slope(recon: [Double], truth: [Double]) -> Double? {
        guard let (meanR, meanT) = means(recon, truth) else { return nil }
        return LinearFit(x: truth, minus: meanT, y: recon, minus: meanR, formula: .centred)?.slope
    }

    private static func means(_ recon: [Double], _ truth: [Double]) -> (Double, Double)? {
        precondition(recon.count == truth.count)
        guard !recon.isEmpty else { return nil }
        let n = Double(recon.count)
        return (recon.reduce(0, +) / n, truth.reduce(0, +) / n)
    }

    /// 100·‖corrected(r′) − t′‖/‖t′‖; nil when ‖t′‖ < 1e-30 (qsm-ci's test) or ‖t′‖ ≤ 1e-12·‖t‖
    /// (a constant truth, whose demeaned values are rounding noise).
    @inline(__always)
    private static func percent(_ recon: [Double], _ truth: [Double], _ meanR: Double, _ meanT: Double,
                                _ corrected: (Double) -> Double) -> Double? {
        var error = 0.0, reference = 0.0, magnitude = 0.0
        for i in recon.indices {
            let t = truth[i] - meanT
            let d = corrected(recon[i] - meanR) - t
            error += d * d
            reference += t * t
            magnitude += truth[i] * truth[i]
        }
        guard reference.squareRoot() >= 1e-30, reference > 1e-24 * magnitude else { return nil }
        return 100 * error.squareRoot() / reference.squareRoot()
    }
}
