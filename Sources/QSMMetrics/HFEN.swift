import QSMCore

/// High-frequency error norm: the RMSE formula applied to Laplacian-of-Gaussian filtered volumes,
/// 100·‖L(r) − L(t)‖/‖L(t)‖ in percent.
///
/// Ravishankar S, Bresler Y. MR image reconstruction from highly undersampled k-space data by
/// dictionary learning. IEEE TMI 2011;30:1028–1041. doi:10.1109/TMI.2010.2090538. Used as a QSM
/// metric by Langkammer C, et al. MRM 2018;79:1661–1673. doi:10.1002/mrm.26830.
///
/// Both kernels are applied as sums of separable passes (σ = 1.5 voxels):
/// L = g₂(x)g₀(y)g₀(z) + g₀(x)g₂(y)g₀(z) + g₀(x)g₀(y)g₂(z), with g₀ the unit-sum sampled Gaussian
/// and g₂ = g₀·(x²/σ⁴ − 1/σ²).
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
        // L is linear, so L(r) − L(t) = L(r − t): two filtered volumes instead of three.
        let error = laplacianOfGaussian(recon.combined(with: truth) { $0 - $1 })
        let reference = laplacianOfGaussian(truth)
        var e = 0.0, t = 0.0
        for i in 0..<error.count where support == .grid || mask[i] {
            e += error.values[i] * error.values[i]
            t += reference.values[i] * reference.values[i]
        }
        let floor = kernel == .qsmCI ? 1e-30 : 0
        guard t.squareRoot() > floor else { return nil }
        return 100 * e.squareRoot() / t.squareRoot()
    }

    func laplacianOfGaussian(_ v: Field) -> Field {
        let sigma = 1.5
        let radius = kernel == .challenge2016 ? 7 : 8
        let boundary: FilterBoundary = kernel == .challenge2016 ? .zero : .reflect
        let g0 = gaussianKernel(sigma: sigma, radius: radius)
        let g2 = gaussianKernel(sigma: sigma, radius: radius, order: 2)
        // Seven passes: a = g₀ₓv, b = g₂ₓv; L = g₀z(g₂y a + g₀y b) + g₂z(g₀y a).
        let a = v.correlated(axis: 0, weights: g0, boundary: boundary)
        let b = v.correlated(axis: 0, weights: g2, boundary: boundary)
        let ya = a.correlated(axis: 1, weights: g0, boundary: boundary)
        let mixed = a.correlated(axis: 1, weights: g2, boundary: boundary)
            .combined(with: b.correlated(axis: 1, weights: g0, boundary: boundary)) { $0 + $1 }
        var out = mixed.correlated(axis: 2, weights: g0, boundary: boundary)
            .combined(with: ya.correlated(axis: 2, weights: g2, boundary: boundary)) { $0 + $1 }
        if kernel == .challenge2016 {
            // H ← H − ΣH/15³: subtract (ΣH/15³)·(15³ box sum), ΣH = 3·Σg₂ because Σg₀ = 1.
            let width = 2 * radius + 1
            let offset = 3 * g2.reduce(0, +) / Double(width * width * width)
            let ones = [Double](repeating: 1, count: width)
            let box = v.correlated(weights: ones, boundary: .zero)
            out = out.combined(with: box) { $0 - offset * $1 }
        }
        return out
    }
}
