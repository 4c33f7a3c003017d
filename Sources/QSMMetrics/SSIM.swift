import QSMCore

/// Structural similarity of two 3-D volumes, with the window, boundary, constants and averaging
/// region spelled out (every published variant differs in at least one of them).
///
/// Wang Z, Bovik AC, Sheikh HR, Simoncelli EP. Image quality assessment: from error visibility to
/// structural similarity. IEEE TIP 2004;13:600–612. doi:10.1109/TIP.2003.819861.
///
/// Per voxel, with local means μ, population variances σ² and covariance σ_rt from the window:
/// SSIM = (2μrμt + C1)(2σrt + C2)/((μr² + μt² + C1)(σr² + σt² + C2)). The window statistics are
/// E[·] − products of means, as scikit-image (`use_sample_covariance=False`), `ssim_index3d.m`,
/// FANSI `compute_xsim.m` and qsm-ci `xsim` compute them.
public struct SSIM: Sendable {
    /// The separable averaging window.
    public enum Window: Sendable, Equatable {
        /// Sampled Gaussian with standard deviation `sigma` (voxels), taps −radius…radius, unit sum.
        case gaussian(sigma: Double, radius: Int)
        /// Uniform box of 2·radius + 1 taps per axis.
        case uniform(radius: Int)
    }

    /// How windows at the grid border are completed.
    public enum Boundary: Sendable, Equatable {
        /// Zero padding (MATLAB `convn(…,'same')`).
        case zero
        /// Mirror including the edge voxel (scipy/scikit-image `reflect`).
        case reflect
        /// Repeat the edge voxel (MATLAB `imgaussfilt3` default).
        case replicate
        /// Only in-grid voxels, weights renormalised (QSM.rs / qsm-ci `xsim`).
        case truncated
    }

    /// Which voxels of the SSIM map are averaged.
    public enum Averaging: Sendable, Equatable {
        /// Mean over the mask.
        case mask
        /// Mean over mask voxels whose denominator is positive (qsm-ci `xsim`).
        case maskWithPositiveDenominator
        /// Mean over the whole grid without a border of `border` voxels (scikit-image's return value).
        case croppedGrid(border: Int)
    }

    /// The window.
    public var window: Window
    /// The border rule.
    public var boundary: Boundary
    /// Stabiliser C1 = (K1·L)², in squared value units.
    public var c1: Double
    /// Stabiliser C2 = (K2·L)², in squared value units.
    public var c2: Double
    /// The averaging region.
    public var averaging: Averaging

    /// An SSIM with every setting explicit.
    public init(window: Window, boundary: Boundary, c1: Double, c2: Double, averaging: Averaging) {
        self.window = window
        self.boundary = boundary
        self.c1 = c1
        self.c2 = c2
        self.averaging = averaging
    }

    /// scikit-image `structural_similarity(gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False, data_range=L)`: 11-tap Gaussian (truncate 3.5), reflect,
    /// K = (0.01, 0.03); `averaging` defaults to its return value (grid minus a 5-voxel border).
    public static func scikitImage(dataRange: Double, averaging: Averaging = .croppedGrid(border: 5)) -> SSIM {
        SSIM(window: .gaussian(sigma: 1.5, radius: 5), boundary: .reflect,
             c1: (0.01 * dataRange) * (0.01 * dataRange), c2: (0.03 * dataRange) * (0.03 * dataRange),
             averaging: averaging)
    }

    /// The `ssim_index3d.m` lineage of the 2016 challenge: 5³ Gaussian σ 1.5, zero padding,
    /// K = (0.01, 0.03), L = 255 (inputs rescaled to 0…255 first), mean over the mask.
    public static let index3d = SSIM(window: .gaussian(sigma: 1.5, radius: 2), boundary: .zero,
                                     c1: (0.01 * 255) * (0.01 * 255), c2: (0.03 * 255) * (0.03 * 255),
                                     averaging: .mask)

    /// Mean SSIM of two volumes on one grid; nil when the averaging region is empty.
    public func mean(_ a: Volume<Double>, _ b: Volume<Double>, mask: Mask) -> Double? {
        precondition(a.grid.shape == b.grid.shape && mask.grid.shape == a.grid.shape)
        return mean(Field(shape: a.shape, values: a.voxels), Field(shape: b.shape, values: b.voxels),
                    mask: mask.voxels)
    }

    func mean(_ a: Field, _ b: Field, mask: [Bool]) -> Double? {
        let weights: [Double]
        switch window {
        case let .gaussian(sigma, radius): weights = gaussianKernel(sigma: sigma, radius: radius)
        case let .uniform(radius):
            weights = [Double](repeating: 1 / Double(2 * radius + 1), count: 2 * radius + 1)
        }
        let filterBoundary: FilterBoundary
        switch boundary {
        case .zero: filterBoundary = .zero
        case .reflect: filterBoundary = .reflect
        case .replicate: filterBoundary = .replicate
        case .truncated: filterBoundary = .truncated
        }
        func smooth(_ f: Field) -> Field { f.correlated(weights: weights, boundary: filterBoundary) }
        let muA = smooth(a), muB = smooth(b)
        let aa = smooth(a.mapped { $0 * $0 })
        let bb = smooth(b.mapped { $0 * $0 })
        let ab = smooth(a.combined(with: b) { $0 * $1 })

        let shape = a.shape
        var selected: (Int) -> Bool
        switch averaging {
        case .mask, .maskWithPositiveDenominator:
            selected = { mask[$0] }
        case let .croppedGrid(border):
            selected = { i in
                let x = i % shape.x, y = (i / shape.x) % shape.y, z = i / (shape.x * shape.y)
                return x >= border && x < shape.x - border && y >= border && y < shape.y - border
                    && z >= border && z < shape.z - border
            }
        }
        let requirePositive = averaging == .maskWithPositiveDenominator
        var sum = 0.0, count = 0
        for i in 0..<a.count where selected(i) {
            let ma = muA.values[i], mb = muB.values[i]
            let varA = aa.values[i] - ma * ma, varB = bb.values[i] - mb * mb
            let cov = ab.values[i] - ma * mb
            let numerator = (2 * ma * mb + c1) * (2 * cov + c2)
            let denominator = (ma * ma + mb * mb + c1) * (varA + varB + c2)
            if requirePositive && !(denominator > 0) { continue }
            sum += numerator / denominator
            count += 1
        }
        return count > 0 ? sum / Double(count) : nil
    }
}

/// Rescalings applied before an 8-bit-style SSIM (L = 255).
public enum IntensityRescaling: String, Codable, Sendable {
    /// v ← 255·(v − lo)/(hi − lo) with lo, hi the joint min and max of both volumes.
    case jointRange = "joint_range"
    /// Same with lo, hi the min and max of the truth.
    case truthRange = "truth_range"

    /// Both volumes rescaled to 0…255 by this rule; nil when hi = lo.
    public func apply(recon: [Double], truth: [Double]) -> ([Double], [Double])? {
        var lo = truth.min() ?? 0, hi = truth.max() ?? 0
        if self == .jointRange {
            lo = Swift.min(lo, recon.min() ?? lo)
            hi = Swift.max(hi, recon.max() ?? hi)
        }
        guard hi > lo else { return nil }
        let span = hi - lo
        return (recon.map { 255 * ($0 - lo) / span }, truth.map { 255 * ($0 - lo) / span })
    }
}
