/// Pearson's linear correlation coefficient of paired values.
///
/// Pearson K. Notes on regression and inheritance in the case of two parents. Proc R Soc Lond
/// 1895;58:240–242. doi:10.1098/rspl.1895.0041.
public enum PearsonCorrelation {
    /// r = Σr′t′/√(Σr′²·Σt′²) with centred values; nil when either side is constant (spread below
    /// 1e-12 of its magnitude) or empty.
    ///
    /// `.rawSums` evaluates qsm-ci's `correlation` instead:
    /// (nΣrt − ΣrΣt)/√((nΣr² − (Σr)²)(nΣt² − (Σt)²)), returning 0 when the denominator is 0.
    public static func coefficient(recon: [Double], truth: [Double],
                                   formula: LinearFit.Formula = .centred) -> Double? {
        precondition(recon.count == truth.count)
        guard !recon.isEmpty else { return nil }
        let n = Double(recon.count)
        switch formula {
        case .centred:
            let meanR = recon.reduce(0, +) / n, meanT = truth.reduce(0, +) / n
            var srt = 0.0, srr = 0.0, stt = 0.0, magnitudeR = 0.0, magnitudeT = 0.0
            for i in recon.indices {
                let r = recon[i] - meanR, t = truth[i] - meanT
                srt += r * t; srr += r * r; stt += t * t
                magnitudeR += recon[i] * recon[i]; magnitudeT += truth[i] * truth[i]
            }
            // A spread below 1e-12 of the magnitude is rounding noise around a constant.
            guard srr > 1e-24 * magnitudeR, stt > 1e-24 * magnitudeT, srr > 0, stt > 0 else { return nil }
            return srt / (srr * stt).squareRoot()
        case .rawSums:
            var sr = 0.0, st = 0.0, srr = 0.0, stt = 0.0, srt = 0.0
            for i in recon.indices {
                let r = recon[i], t = truth[i]
                sr += r; st += t; srr += r * r; stt += t * t; srt += r * t
            }
            let denominator = ((n * srr - sr * sr) * (n * stt - st * st)).squareRoot()
            return denominator != 0 ? (n * srt - sr * st) / denominator : 0
        }
    }
}
