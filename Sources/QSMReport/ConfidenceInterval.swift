/// A sample mean with its Student-t confidence interval.
public struct ConfidenceInterval: Sendable, Equatable {
    /// The sample mean.
    public let mean: Double
    /// Half the interval's width, t(1 − α/2, n − 1)·s/√n; NaN when n = 1 (no spread estimate).
    public let halfWidth: Double
    /// The sample standard deviation s (n − 1 denominator); NaN when n = 1.
    public let standardDeviation: Double
    /// Number of values.
    public let count: Int
    /// Confidence level, e.g. 0.95.
    public let level: Double

    /// Lower end, mean − halfWidth.
    public var lower: Double { mean - halfWidth }
    /// Upper end, mean + halfWidth.
    public var upper: Double { mean + halfWidth }
}
