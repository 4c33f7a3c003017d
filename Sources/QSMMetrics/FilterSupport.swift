import QSMCore

// Shared pieces of the neighbourhood metrics (SSIM, XSIM, HFEN): boundary rules, per-position
// tap tables and sampled Gaussian kernels. The filters themselves are FusedSeparableFilter
// (SSIM, XSIM) and FFTCorrelation (HFEN).

/// How a 1-D correlation treats taps that fall outside the grid.
enum FilterBoundary: Sendable {
    /// Outside values are 0 (MATLAB `convn`/`imfilter` default, scipy `constant`).
    case zero
    /// Mirror including the edge voxel, `d c b a | a b c d` (scipy `reflect`, numpy `symmetric`).
    case reflect
    /// Outside values repeat the edge voxel (MATLAB `replicate`, scipy `nearest`).
    case replicate
    /// Outside taps are dropped and the remaining weights renormalised to their original sum
    /// (the in-grid-only windows of QSM.rs/qsm-ci `xsim`).
    case truncated
}

/// A 3-D volume of Doubles in x-fastest order, as the filters see it.
struct Field: Sendable {
    var shape: SIMD3<Int>
    var values: [Double]

    var count: Int { values.count }

    init(shape: SIMD3<Int>, values: [Double]) {
        precondition(values.count == shape.x * shape.y * shape.z)
        self.shape = shape
        self.values = values
    }
}

/// For each output position along one axis, the (source index, weight) pairs after the
/// boundary rule.
struct TapTable: Sendable {
    /// The kernel, centred.
    var weights: [Double]
    /// Per output position, the (source index, weight) pairs; `.truncated` weights are rescaled
    /// by (kernel sum ÷ in-grid weight sum).
    var entries: [[(Int, Double)]]

    init(length n: Int, weights: [Double], boundary: FilterBoundary) {
        let radius = weights.count / 2
        let total = weights.reduce(0, +)
        var entries: [[(Int, Double)]] = []
        for i in 0..<n {
            var row: [(Int, Double)] = []
            var inside = 0.0
            for (k, w) in weights.enumerated() where w != 0 {
                guard let src = mapIndex(i + k - radius, n, boundary) else { continue }
                row.append((src, w))
                inside += w
            }
            let scale = boundary == .truncated && inside != 0 ? total / inside : 1
            if boundary == .truncated { row = row.map { ($0.0, $0.1 * scale) } }
            entries.append(row)
        }
        self.weights = weights
        self.entries = entries
    }
}

/// The in-grid source of tap position `i` on an axis of length `n`, or nil for a zero tap.
func mapIndex(_ i: Int, _ n: Int, _ boundary: FilterBoundary) -> Int? {
    if i >= 0 && i < n { return i }
    switch boundary {
    case .zero, .truncated:
        return nil
    case .replicate:
        return i < 0 ? 0 : n - 1
    case .reflect:
        let period = 2 * n
        var m = i % period
        if m < 0 { m += period }
        return m < n ? m : period - 1 - m
    }
}

/// Sampled Gaussian (order 0) or its second derivative (order 2) on −radius…radius, the
/// Gaussian normalised to unit sum first, as scipy's `_gaussian_kernel1d` does.
func gaussianKernel(sigma: Double, radius: Int, order: Int = 0) -> [Double] {
    precondition(order == 0 || order == 2)
    let xs = (-radius...radius).map(Double.init)
    let phi = xs.map { Double.exp(-0.5 * $0 * $0 / (sigma * sigma)) }
    let sum = phi.reduce(0, +)
    let g = phi.map { $0 / sum }
    guard order == 2 else { return g }
    let s2 = sigma * sigma
    return zip(g, xs).map { $0 * ($1 * $1 / (s2 * s2) - 1 / s2) }
}
