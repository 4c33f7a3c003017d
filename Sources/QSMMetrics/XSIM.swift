/// XSIM: SSIM on susceptibility maps in native ppm, with constants chosen for χ ranges.
///
/// Milovic C, Tejos C, Silva J, Shmueli K, Irarrazaval P. XSIM: A structural similarity index
/// measure optimized for MRI QSM. MRM 2025;93:411–421. doi:10.1002/mrm.30271.
/// L = 1 ppm, K1 = 0.01, K2 = 0.001 (C1 = 1e-4, C2 = 1e-6); no rescaling. Implementations differ
/// in window, border and averaging (shared reference QSM.md §9.3), hence three presets.
public enum XSIM {
    /// C1 = (0.01 · 1 ppm)².
    public static let c1 = 1e-4
    /// C2 = (0.001 · 1 ppm)².
    public static let c2 = 1e-6

    /// QSM.rs `tests/common/mod.rs::xsim` and qsm-ci 0.6.2 `xsim`: 5³ uniform windows truncated
    /// at the grid border, mean over mask voxels with a positive denominator.
    public static let qsmCI = SSIM(window: .uniform(radius: 2), boundary: .truncated, c1: c1, c2: c2,
                                   averaging: .maskWithPositiveDenominator)

    /// FANSI `compute_xsim.m` (2019): 7³ Gaussian σ 1.5, `convn 'same'` zero padding, mean over the mask.
    public static let fansi2019 = SSIM(window: .gaussian(sigma: 1.5, radius: 3), boundary: .zero,
                                       c1: c1, c2: c2, averaging: .mask)

    /// FANSI `compute_xsim.m` v2.0 (2022, `imgaussfilt3`): as 2019 with replicate padding.
    public static let fansi2022 = SSIM(window: .gaussian(sigma: 1.5, radius: 3), boundary: .replicate,
                                       c1: c1, c2: c2, averaging: .mask)
}
