/// The 2016 QSM reconstruction challenge RMSE: 100·‖r − t‖₂/‖t‖₂ in percent, no demeaning.
///
/// Langkammer C, Schweser F, Shmueli K, et al. Quantitative susceptibility mapping: Report from the
/// 2016 reconstruction challenge. MRM 2018;79:1661–1673. doi:10.1002/mrm.26830 (`compute_rmse.m`,
/// with its mask argument: the norms run over the scored voxels only).
public enum RMSE {
    /// 100·‖r − t‖/‖t‖ over paired values (the scored voxels, same order); nil when ‖t‖ = 0.
    public static func percent(recon: [Double], truth: [Double]) -> Double? {
        precondition(recon.count == truth.count)
        var error = 0.0, reference = 0.0
        for i in recon.indices {
            let d = recon[i] - truth[i]
            error += d * d
            reference += truth[i] * truth[i]
        }
        guard reference > 0 else { return nil }
        return 100 * error.squareRoot() / reference.squareRoot()
    }
}
