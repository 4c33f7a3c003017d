import QSMCore

// The neighbourhood metrics (HFEN, SSIM, XSIM) are all built from 1-D correlations along x, y
// and z. Goals, in order: 1. reproduce each reference implementation's boundary rule exactly,
// 2. Double accumulation, 3. speed (contiguous inner loops the compiler vectorises; parallel
// over lines/slices; no 3-D windows).

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

    init(zeros shape: SIMD3<Int>) {
        self.init(shape: shape, values: [Double](repeating: 0, count: shape.x * shape.y * shape.z))
    }

    /// Element-wise combination of two fields of one shape (parallel).
    func combined(with other: Field, _ operation: @Sendable (Double, Double) -> Double) -> Field {
        precondition(shape == other.shape)
        var out = Field(zeros: shape)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                out.values.withUnsafeMutableBufferPointer { o in
                    let pa = SendablePointer(UnsafeMutablePointer(mutating: a.baseAddress!))
                    let pb = SendablePointer(UnsafeMutablePointer(mutating: b.baseAddress!))
                    let po = SendablePointer(o.baseAddress!)
                    parallelFor(0..<count) { range in
                        for i in range { po[i] = operation(pa[i], pb[i]) }
                    }
                }
            }
        }
        return out
    }

    /// Element-wise transform (parallel).
    func mapped(_ transform: @Sendable (Double) -> Double) -> Field {
        var out = Field(zeros: shape)
        values.withUnsafeBufferPointer { a in
            out.values.withUnsafeMutableBufferPointer { o in
                let pa = SendablePointer(UnsafeMutablePointer(mutating: a.baseAddress!))
                let po = SendablePointer(o.baseAddress!)
                parallelFor(0..<count) { range in
                    for i in range { po[i] = transform(pa[i]) }
                }
            }
        }
        return out
    }

    /// Correlation with `weights` (odd length, centred) along `axis` (0 = x, 1 = y, 2 = z).
    func correlated(axis: Int, weights: [Double], boundary: FilterBoundary) -> Field {
        precondition(weights.count % 2 == 1 && (0...2).contains(axis))
        let n = shape[axis]
        let inner = axis == 0 ? 1 : (axis == 1 ? shape.x : shape.x * shape.y)
        let outer = count / (n * inner)
        var out = Field(zeros: shape)
        guard count > 0 else { return out }
        let taps = TapTable(length: n, weights: weights, boundary: boundary)
        values.withUnsafeBufferPointer { input in
            out.values.withUnsafeMutableBufferPointer { output in
                let source = SendablePointer(UnsafeMutablePointer(mutating: input.baseAddress!))
                let target = SendablePointer(output.baseAddress!)
                if inner == 1 {
                    Self.correlateLines(source, target, lineLength: n, lines: outer, weights: weights,
                                        boundary: boundary, taps: taps)
                } else {
                    Self.correlateStrided(source, target, length: n, inner: inner, outer: outer, taps: taps)
                }
            }
        }
        return out
    }

    /// Separable correlation with the same 1-D kernel along x, y and z.
    func correlated(weights: [Double], boundary: FilterBoundary) -> Field {
        correlated(axis: 0, weights: weights, boundary: boundary)
            .correlated(axis: 1, weights: weights, boundary: boundary)
            .correlated(axis: 2, weights: weights, boundary: boundary)
    }

    /// Contiguous lines (x axis): copy each line into a padded buffer, then one vectorisable
    /// multiply-add per tap.
    private static func correlateLines(
        _ source: SendablePointer<Double>, _ target: SendablePointer<Double>, lineLength n: Int,
        lines: Int, weights: [Double], boundary: FilterBoundary, taps: TapTable
    ) {
        let radius = weights.count / 2
        let padIndex = (0..<(n + 2 * radius)).map { mapIndex($0 - radius, n, boundary) }
        let scale = taps.truncationScale
        parallelFor(0..<lines) { range in
            var padded = [Double](repeating: 0, count: n + 2 * radius)
            padded.withUnsafeMutableBufferPointer { pad in
                for line in range {
                    let base = line * n
                    for j in 0..<pad.count { pad[j] = padIndex[j].map { source[base + $0] } ?? 0 }
                    let out = target.base + base
                    for i in 0..<n { out[i] = 0 }
                    for (k, w) in weights.enumerated() where w != 0 {
                        let p = pad.baseAddress! + k
                        for i in 0..<n { out[i] += w * p[i] }
                    }
                    if let scale { for i in 0..<n { out[i] *= scale[i] } }
                }
            }
        }
    }

    /// Strided axes (y, z): each output line is a weighted sum of whole input lines of length
    /// `inner`, so the innermost loop runs over contiguous memory.
    private static func correlateStrided(
        _ source: SendablePointer<Double>, _ target: SendablePointer<Double>, length n: Int,
        inner: Int, outer: Int, taps: TapTable
    ) {
        parallelFor(0..<(outer * n)) { range in
            for item in range {
                let o = item / n, i = item % n
                let out = target.base + (o * n + i) * inner
                for j in 0..<inner { out[j] = 0 }
                for (src, w) in taps.entries[i] {
                    let p = source.base + (o * n + src) * inner
                    for j in 0..<inner { out[j] += w * p[j] }
                }
            }
        }
    }
}

/// For each output position along one axis, the (source index, weight) pairs after the
/// boundary rule.
private struct TapTable: Sendable {
    var entries: [[(Int, Double)]]
    /// Per-position factor for `.truncated` (original weight sum ÷ in-grid weight sum).
    var truncationScale: [Double]?

    init(length n: Int, weights: [Double], boundary: FilterBoundary) {
        let radius = weights.count / 2
        let total = weights.reduce(0, +)
        var entries: [[(Int, Double)]] = []
        var scales: [Double] = []
        for i in 0..<n {
            var row: [(Int, Double)] = []
            var inside = 0.0
            for (k, w) in weights.enumerated() where w != 0 {
                guard let src = mapIndex(i + k - radius, n, boundary) else { continue }
                row.append((src, w))
                inside += w
            }
            let scale = boundary == .truncated && inside != 0 ? total / inside : 1
            scales.append(scale)
            if boundary == .truncated { row = row.map { ($0.0, $0.1 * scale) } }
            entries.append(row)
        }
        self.entries = entries
        self.truncationScale = boundary == .truncated ? scales : nil
    }
}

/// The in-grid source of tap position `i` on an axis of length `n`, or nil for a zero tap.
private func mapIndex(_ i: Int, _ n: Int, _ boundary: FilterBoundary) -> Int? {
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
