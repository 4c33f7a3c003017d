import Foundation

/// The regularised incomplete beta function I_x(a, b), by Lentz's continued fraction.
///
/// The continued fraction (Abramowitz M, Stegun IA. Handbook of Mathematical Functions, 1964,
/// 26.5.8) converges fast for x < (a + 1)/(a + b + 2); above that the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) is used. Relative accuracy is about 1e-14 for the a, b of
/// Student's t with ν ≤ 10⁶ (the prefactor's log-gammas dominate the error for large a).
enum IncompleteBeta {
    static func regularized(_ x: Double, _ a: Double, _ b: Double) -> Double {
        precondition(a > 0 && b > 0)
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logPrefactor = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        if x < (a + 1) / (a + b + 2) {
            return exp(logPrefactor) * continuedFraction(x, a, b) / a
        }
        return 1 - exp(logPrefactor) * continuedFraction(1 - x, b, a) / b
    }

    /// The continued fraction for I_x(a, b)·a / (x^a (1−x)^b / B(a, b)), modified Lentz method.
    private static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300, epsilon = 1e-16
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var result = d
        // Convergence takes O(√max(a, b)) steps; the cap covers ν up to about 10⁹.
        for m in 1...200_000 {
            let m = Double(m)
            // Even step: d_{2m} = m(b − m)x / ((a + 2m − 1)(a + 2m)).
            var numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + numerator * d
            if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            result *= d * c
            // Odd step: d_{2m+1} = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1)).
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + numerator * d
            if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            result *= delta
            if abs(delta - 1) < epsilon { break }
        }
        return result
    }
}
