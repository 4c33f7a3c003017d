import Foundation

/// Student's t distribution with ν degrees of freedom (ν = ∞ is the standard normal).
public struct StudentT: Sendable, Equatable {
    /// Degrees of freedom ν > 0 (need not be an integer); `.infinity` for the normal distribution.
    public let degreesOfFreedom: Double

    /// The distribution with `degreesOfFreedom` > 0.
    public init(degreesOfFreedom: Double) throws(QSMError) {
        guard degreesOfFreedom > 0 else {
            throw .invalidParameter("degrees of freedom", "\(degreesOfFreedom) is not positive")
        }
        self.degreesOfFreedom = degreesOfFreedom
    }

    /// P(T > t) for t ≥ 0, computed directly (not as 1 − CDF) so small tails keep their digits.
    ///
    /// P(T > t) = ½ I_{ν/(ν+t²)}(ν/2, ½); the normal tail is ½ erfc(t/√2).
    private func upperTail(_ t: Double) -> Double {
        if degreesOfFreedom.isInfinite { return 0.5 * erfc(t / 2.0.squareRoot()) }
        let nu = degreesOfFreedom
        // x = ν/(ν + t²) and 1 − x = t²/(ν + t²), with logs from log1p so that a = ν/2 ≈ 10⁶
        // multiplying log x does not magnify the rounding of x itself.
        let ratio = t * t / nu
        let logOnePlusRatio = log1p(ratio)
        return 0.5 * IncompleteBeta.regularized(x: 1 / (1 + ratio), y: ratio / (1 + ratio),
                                                logX: -logOnePlusRatio, logY: log(ratio) - logOnePlusRatio,
                                                nu / 2, 0.5)
    }

    /// Probability density at t.
    public func density(_ t: Double) -> Double {
        if degreesOfFreedom.isInfinite { return exp(-t * t / 2) / (2 * Double.pi).squareRoot() }
        let nu = degreesOfFreedom
        let logNormaliser = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * log(nu * Double.pi)
        return exp(logNormaliser - (nu + 1) / 2 * log1p(t * t / nu))
    }

    /// P(T ≤ t).
    public func cumulativeProbability(_ t: Double) -> Double {
        if t.isNaN { return .nan }
        return t >= 0 ? 1 - upperTail(t) : upperTail(-t)
    }

    /// The t with P(T ≤ t) = `probability` (0 < probability < 1), to about 1e-12 relative.
    ///
    /// Solves the tail equation by Newton's method on the density, kept inside a bisection
    /// bracket so it converges for every ν (the ν = 1 Cauchy tail defeats plain Newton).
    public func quantile(_ probability: Double) throws(QSMError) -> Double {
        guard probability > 0, probability < 1 else {
            throw .invalidParameter("probability", "\(probability) is not inside (0, 1)")
        }
        if probability == 0.5 { return 0 }
        let target = probability > 0.5 ? 1 - probability : probability  // upper-tail mass beyond |t|
        var low = 0.0, high = 1.0
        while upperTail(high) > target, high < 1e300 { low = high; high *= 2 }
        var t = (low + high) / 2
        for _ in 0..<300 {
            let excess = upperTail(t) - target  // decreasing in t
            if excess > 0 { low = t } else { high = t }
            let density = density(t)
            var next = density > 0 ? t + excess / density : .nan
            if !(next > low && next < high) { next = (low + high) / 2 }
            if abs(next - t) <= 1e-15 * max(t, 1e-300) || high - low <= 1e-15 * high {
                t = next
                break
            }
            t = next
        }
        return probability > 0.5 ? t : -t
    }
}
