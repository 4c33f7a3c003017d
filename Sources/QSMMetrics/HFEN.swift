import QSMCore

/// High-frequency error norm: the RMSE formula applied to Laplacian-of-Gaussian filtered volumes,
/// 100·‖L(r) − L(t)‖/‖L(t)‖ in percent.
///
/// Ravishankar S, Bresler Y. MR image reconstruction from highly undersampled k-space data by
/// dictionary learning. IEEE TMI 2011;30:1028–1041. doi:10.1109/TMI.2010.2090538. Used as a QSM
/// metric by Langkammer C, et al. MRM 2018;79:1661–1673. doi:10.1002/mrm.26830.
///
/// Both kernels (σ = 1.5 voxels) are L = g₂(x)g₀(y)g₀(z) + g₀(x)g₂(y)g₀(z) + g₀(x)g₀(y)g₂(z), with
/// g₀ the unit-sum sampled Gaussian and g₂ = g₀·(x²/σ⁴ − 1/σ²); the 2016 one minus its mean. They
/// are applied by FFT on a grid padded with the kernel's boundary rule (exact up to rounding).
public struct HFEN: Sendable {
    /// Which LoG filter and where the norms are taken.
    public enum Kernel: String, Codable, Sendable, CaseIterable {
        /// 2016 `compute_hfen.m`: 15³ support (radius 7), the 3-D kernel made zero-sum by subtracting
        /// its mean, correlation with zero padding (MATLAB `imfilter` default).
        case challenge2016 = "challenge2016"
        /// qsm-ci 0.6.2 `hfen`: scipy `gaussian_laplace(σ = 1.5, truncate = 5)`, i.e. 17 taps
        /// (radius int(5·1.5 + 0.5) = 8), `reflect` border, no zero-sum correction.
        case qsmCI = "qsm-ci"
    }

    /// Which voxels the two norms run over.
    public enum Support: String, Codable, Sendable {
        /// The whole grid (2016 `compute_hfen.m` without a mask).
        case grid
        /// The mask only (qsm-ci; the 2016 filter with a mask argument).
        case mask
    }

    /// The filter.
    public var kernel: Kernel
    /// The norm support.
    public var support: Support

    /// An HFEN with explicit kernel and support.
    public init(kernel: Kernel, support: Support) {
        self.kernel = kernel
        self.support = support
    }

    /// HFEN (percent) of `recon` against `truth`; nil when ‖L(t)‖ = 0 (or < 1e-30 for qsm-ci).
    public func percent(recon: Volume<Double>, truth: Volume<Double>, mask: Mask) -> Double? {
        precondition(recon.shape == truth.shape && mask.shape == recon.shape)
        return percent(Field(shape: recon.shape, values: recon.voxels),
                       Field(shape: truth.shape, values: truth.voxels), mask: mask.voxels)
    }

    func percent(_ recon: Field, _ truth: Field, mask: [Bool]) -> Double? {
        let sigma = 1.5
        let radius = kernel == .challenge2016 ? 7 : 8
        let g0 = gaussianKernel(sigma: sigma, radius: radius)
        let g2 = gaussianKernel(sigma: sigma, radius: radius, order: 2)
        // 2016: H ← H − ΣH/15³ (zero-sum); ΣH = 3·Σg₂ because Σg₀ = 1. qsm-ci: no correction.
        let width = Double(2 * radius + 1)
        let offset = kernel == .challenge2016 ? 3 * g2.reduce(0, +) / (width * width * width) : 0
        guard let filter = FFTCorrelation(
            shape: recon.shape, radius: radius, boundary: kernel == .challenge2016 ? .zero : .reflect,
            terms: [(g2, g0, g0), (g0, g2, g0), (g0, g0, g2)], constant: -offset) else { return nil }
        // L is linear, so L(r) − L(t) = L(r − t).
        let wholeGrid = support == .grid
        let (e, t) = recon.values.withUnsafeBufferPointer { r in
            truth.values.withUnsafeBufferPointer { tv in
                mask.withUnsafeBufferPointer { m in
                    (filter.sumOfSquares(r.baseAddress!, minus: tv.baseAddress!, over: wholeGrid ? nil : m.baseAddress!),
                     filter.sumOfSquares(tv.baseAddress!, minus: nil, over: wholeGrid ? nil : m.baseAddress!))
                }
            }
        }
        let floor = kernel == .qsmCI ? 1e-30 : 0
        guard t.squareRoot() > floor else { return nil }
        return 100 * e.squareRoot() / t.squareRoot()
    }
}
