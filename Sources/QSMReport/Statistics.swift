/// Descriptive statistics of benchmark results: means, spreads and confidence intervals.
///
/// Non-finite values propagate (a NaN metric from a diverged run makes the mean NaN) rather than
/// being dropped silently; callers that want to exclude them must do so visibly.
public enum Statistics {
    /// The arithmetic mean; throws for an empty list.
    public static func mean(_ values: [Double]) throws(QSMError) -> Double {
        guard !values.isEmpty else { throw .invalidParameter("values", "the list is empty; a mean needs at least one value") }
        return values.reduce(0, +) / Double(values.count)
    }

    /// The sample standard deviation (n − 1 denominator, two-pass); throws for fewer than two values.
    public static func sampleStandardDeviation(_ values: [Double]) throws(QSMError) -> Double {
        guard values.count >= 2 else {
            throw .invalidParameter("values", "\(values.count) value(s); a standard deviation needs at least two")
        }
        let m = try mean(values)
        // Two passes: subtracting the mean first avoids the cancellation of Σx² − n·m².
        let squares = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (squares / Double(values.count - 1)).squareRoot()
    }

    /// The mean with its `level` (0…1) confidence interval from Student's t with n − 1 degrees of
    /// freedom; for a single value the half-width is NaN.
    public static func meanConfidenceInterval(_ values: [Double], level: Double = 0.95) throws(QSMError) -> ConfidenceInterval {
        guard level > 0, level < 1 else { throw .invalidParameter("confidence level", "\(level) is not inside (0, 1)") }
        let m = try mean(values)
        guard values.count >= 2 else {
            return ConfidenceInterval(mean: m, halfWidth: .nan, standardDeviation: .nan, count: values.count, level: level)
        }
        let s = try sampleStandardDeviation(values)
        let t = try StudentT(degreesOfFreedom: Double(values.count - 1)).quantile(0.5 + level / 2)
        return ConfidenceInterval(mean: m, halfWidth: t * s / Double(values.count).squareRoot(),
                                  standardDeviation: s, count: values.count, level: level)
    }

    /// The mean of the paired differences first − second with its confidence interval (paired t).
    public static func pairedDifference(_ first: [Double], _ second: [Double],
                                        level: Double = 0.95) throws(QSMError) -> ConfidenceInterval {
        guard first.count == second.count else {
            throw .mismatch("paired values", "\(first.count) values cannot pair with \(second.count)")
        }
        return try meanConfidenceInterval(zip(first, second).map { $0 - $1 }, level: level)
    }
}
