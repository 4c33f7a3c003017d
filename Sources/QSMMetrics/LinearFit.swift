/// An ordinary least-squares line y ≈ slope·x + intercept.
///
/// Two algebraically equal formulas are offered because reference scorers differ: `.centred`
/// (Σ(x−x̄)(y−ȳ)/Σ(x−x̄)², numerically stable) and `.rawSums` (the n·Σxy − Σx·Σy form of QSM.rs
/// `linear_fit` and qsm-ci `linear_fit`, which returns slope 0 and intercept 0 when
/// |n·Σx² − (Σx)²| < 1e-30).
public struct LinearFit: Equatable, Sendable {
    /// Which algebraic form computes the fit.
    public enum Formula: Sendable {
        /// Centred sums (numpy `polyfit` agrees to rounding).
        case centred
        /// Raw sums as in QSM.rs / qsm-ci, including their degenerate-case result (0, 0).
        case rawSums
    }

    /// dy/dx.
    public var slope: Double
    /// y at x = 0.
    public var intercept: Double

    /// The fit of `y` on `x` (equal counts); nil when `.centred` and x is constant or empty.
    public init?(x: [Double], y: [Double], formula: Formula = .centred) {
        precondition(x.count == y.count)
        let n = Double(x.count)
        guard x.count > 0 else { return nil }
        switch formula {
        case .centred:
            var sumX = 0.0, sumY = 0.0
            for i in x.indices { sumX += x[i]; sumY += y[i] }
            let meanX = sumX / n, meanY = sumY / n
            var sxy = 0.0, sxx = 0.0
            for i in x.indices {
                let dx = x[i] - meanX
                sxy += dx * (y[i] - meanY)
                sxx += dx * dx
            }
            guard sxx > 0 else { return nil }
            slope = sxy / sxx
            intercept = meanY - slope * meanX
        case .rawSums:
            var sumX = 0.0, sumY = 0.0, sumXX = 0.0, sumXY = 0.0
            for i in x.indices {
                sumX += x[i]; sumY += y[i]; sumXX += x[i] * x[i]; sumXY += x[i] * y[i]
            }
            let denominator = n * sumXX - sumX * sumX
            guard abs(denominator) >= 1e-30 else { slope = 0; intercept = 0; return }
            slope = (n * sumXY - sumX * sumY) / denominator
            intercept = (sumY - slope * sumX) / n
        }
    }
}
