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
        let shape = a.shape, sliceCount = shape.x * shape.y
        let plan = FusedSeparableFilter(
            shape: shape, boundary: filterBoundary, sourceCount: 4,
            planes: (0..<4).map { [PlaneTerm(source: $0, x: weights, y: weights)] },
            outputs: (0..<4).map { [OutputTerm(plane: $0, z: weights)] })
        let c1 = c1, c2 = c2, averaging = averaging
        let result = a.values.withUnsafeBufferPointer { aBuffer in
            b.values.withUnsafeBufferPointer { bBuffer in
                mask.withUnsafeBufferPointer { maskBuffer in
                    let pa = SendablePointer(UnsafeMutablePointer(mutating: aBuffer.baseAddress!))
                    let pb = SendablePointer(UnsafeMutablePointer(mutating: bBuffer.baseAddress!))
                    let pm = SendablePointer(UnsafeMutablePointer(mutating: maskBuffer.baseAddress!))
                    return plan.run(fillSource: { source, z, slice in
                        let base = z * sliceCount
                        for j in 0..<sliceCount {
                            let x = pa[base + j], y = pb[base + j]
                            switch source {
                            case 0: slice[j] = x
                            case 1: slice[j] = y
                            case 2: slice[j] = x * x + y * y
                            default: slice[j] = x * y
                            }
                        }
                    }, reduce: { z, offset, runLength, o in
                        // Only σr² + σt² enters the formula, so E[a² + b²] is one filtered field.
                        let muA = o[0], muB = o[1], squares = o[2], ab = o[3]
                        var border = 0, usesMask = true, requirePositive = false
                        switch averaging {
                        case .mask: break
                        case .maskWithPositiveDenominator: requirePositive = true
                        case let .croppedGrid(b):
                            border = b; usesMask = false
                            if z < b || z >= shape.z - b { return .zero }
                        }
                        let maskRun = pm.base + z * sliceCount + offset
                        var sum = 0.0, count = 0.0
                        for k in 0..<runLength {
                            if usesMask {
                                if !maskRun[k] { continue }
                            } else {
                                let x = (offset + k) % shape.x, y = (offset + k) / shape.x
                                if x < border || x >= shape.x - border || y < border || y >= shape.y - border { continue }
                            }
                            let ma = muA[k], mb = muB[k]
                            let variances = squares[k] - ma * ma - mb * mb, cov = ab[k] - ma * mb
                            let numerator = (2 * ma * mb + c1) * (2 * cov + c2)
                            let denominator = (ma * ma + mb * mb + c1) * (variances + c2)
                            if requirePositive && !(denominator > 0) { continue }
                            sum += numerator / denominator
                            count += 1
                        }
                        return SIMD2(sum, count)
                    })
                }
            }
        }
        let sum = result.x, count = result.y
        return count > 0 ? sum / count : nil
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
