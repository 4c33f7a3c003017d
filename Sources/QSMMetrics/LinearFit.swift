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

    /// The fit of `y` on `x` (equal counts); nil when `.centred` and x is constant (spread below
    /// 1e-12 of its magnitude) or empty.
    public init?(x: [Double], y: [Double], formula: Formula = .centred) {
        self.init(x: x, minus: 0, y: y, minus: 0, formula: formula)
    }

    /// The fit of (y − yOffset) on (x − xOffset), without materialising the shifted values.
    init?(x: [Double], minus xOffset: Double, y: [Double], minus yOffset: Double, formula: Formula) {
        precondition(x.count == y.count)
        let n = Double(x.count)
        guard x.count > 0 else { return nil }
        switch formula {
        case .centred:
            var sumX = 0.0, sumY = 0.0, squaresX = 0.0
            for i in x.indices {
                let xi = x[i] - xOffset
                sumX += xi; sumY += y[i] - yOffset; squaresX += xi * xi
            }
            let meanX = sumX / n, meanY = sumY / n
            var sxy = 0.0, sxx = 0.0
            for i in x.indices {
                let dx = (x[i] - xOffset) - meanX
                sxy += dx * ((y[i] - yOffset) - meanY)
                sxx += dx * dx
            }
            // A spread below 1e-12 of the values' magnitude is rounding noise: x is constant.
            guard sxx > 1e-24 * squaresX, sxx > 0 else { return nil }
            slope = sxy / sxx
            intercept = meanY - slope * meanX
        case .rawSums:
            var sumX = 0.0, sumY = 0.0, sumXX = 0.0, sumXY = 0.0
            for i in x.indices {
                let xi = x[i] - xOffset, yi = y[i] - yOffset
                sumX += xi; sumY += yi; sumXX += xi * xi; sumXY += xi * yi
            }
            let denominator = n * sumXX - sumX * sumX
            guard abs(denominator) >= 1e-30 else { slope = 0; intercept = 0; return }
            slope = (n * sumXY - sumX * sumY) / denominator
            intercept = (sumY - slope * sumX) / n
        }
    }
}
