import Foundation

/// The two-sided Wilcoxon signed-rank test of paired values (is the median difference zero?).
///
/// Wilcoxon F. Individual comparisons by ranking methods. Biometrics Bulletin 1945;1:80–83.
/// doi:10.2307/3001968. Zero differences are dropped before ranking (Wilcoxon's convention, scipy's
/// `zero_method="wilcox"`); tied |differences| get their average rank. For n ≤ 25 the p-value is
/// exact: the null distribution of the positive rank sum is enumerated over all 2ⁿ sign patterns
/// of the observed (possibly tied) ranks. Above that it uses the normal approximation with the tie
/// correction of the variance and a continuity correction of ½.
public struct WilcoxonSignedRank: Sendable, Equatable {
    /// How the p-value was obtained.
    public enum Method: String, Sendable {
        /// Enumerated null distribution (n ≤ 25).
        case exact
        /// Normal approximation with tie and continuity corrections (n > 25).
        case normalApproximation
        /// Every difference was zero: no evidence of a difference, p = 1 by convention.
        case noNonzeroDifferences
    }

    /// Largest n (non-zero differences) with an exact p-value.
    public static let exactLimit = 25

    /// Number of non-zero differences (the n the test uses).
    public let count: Int
    /// Sum of the ranks of positive differences, W⁺.
    public let positiveRankSum: Double
    /// Sum of the ranks of negative differences, W⁻ = n(n + 1)/2 − W⁺.
    public let negativeRankSum: Double
    /// Two-sided p-value.
    public let pValue: Double
    /// Exact or normal approximation.
    public let method: Method

    /// The test statistic min(W⁺, W⁻), as scipy reports it.
    public var statistic: Double { min(positiveRankSum, negativeRankSum) }

    /// Tests the paired differences first − second.
    public init(_ first: [Double], _ second: [Double]) throws(QSMError) {
        guard first.count == second.count else {
            throw .mismatch("paired values", "\(first.count) values cannot pair with \(second.count)")
        }
        try self.init(differences: zip(first, second).map { $0 - $1 })
    }

    /// Tests whether `differences` are symmetric about zero.
    public init(differences: [Double]) throws(QSMError) {
        if let bad = differences.firstIndex(where: { !$0.isFinite }) {
            throw .invalidParameter("paired differences", "value \(bad + 1) is \(differences[bad]), not finite")
        }
        let nonzero = differences.filter { $0 != 0 }
        let n = nonzero.count
        guard n > 0 else {
            count = 0; positiveRankSum = 0; negativeRankSum = 0; pValue = 1; method = .noNonzeroDifferences
            return
        }
        // Twice the average ranks, so tied ranks (k + ½) stay integers for the enumeration.
        let order = nonzero.indices.sorted { abs(nonzero[$0]) < abs(nonzero[$1]) }
        var doubledRanks = [Int](repeating: 0, count: n)
        var tieSizes: [Int] = []
        var start = 0
        while start < n {
            var end = start
            while end + 1 < n, abs(nonzero[order[end + 1]]) == abs(nonzero[order[start]]) { end += 1 }
            for k in start...end { doubledRanks[order[k]] = start + end + 2 }  // 2 × mean of ranks start+1…end+1
            tieSizes.append(end - start + 1)
            start = end + 1
        }
        let doubledPositive = zip(nonzero, doubledRanks).reduce(0) { $0 + ($1.0 > 0 ? $1.1 : 0) }
        let doubledTotal = n * (n + 1)
        count = n
        positiveRankSum = Double(doubledPositive) / 2
        negativeRankSum = Double(doubledTotal - doubledPositive) / 2

        if n <= Self.exactLimit {
            method = .exact
            // counts[s] = number of sign patterns whose doubled positive rank sum is s.
            var counts = [Double](repeating: 0, count: doubledTotal + 1)
            counts[0] = 1
            var reach = 0
            for rank in doubledRanks {
                reach += rank
                for s in stride(from: reach, through: rank, by: -1) { counts[s] += counts[s - rank] }
            }
            let total = pow(2, Double(n))
            let atMost = counts[0...doubledPositive].reduce(0, +) / total
            let atLeast = counts[doubledPositive...].reduce(0, +) / total
            pValue = min(1, 2 * min(atMost, atLeast))
        } else {
            method = .normalApproximation
            let nn = Double(n)
            let expected = nn * (nn + 1) / 4
            let tieCorrection = tieSizes.reduce(0.0) { $0 + Double($1 * $1 * $1 - $1) } / 48
            let variance = nn * (nn + 1) * (2 * nn + 1) / 24 - tieCorrection
            var deviation = positiveRankSum - expected
            // Continuity correction: move ½ towards the mean (never past it).
            deviation = deviation > 0 ? max(0, deviation - 0.5) : min(0, deviation + 0.5)
            let z = variance > 0 ? deviation / variance.squareRoot() : 0
            pValue = min(1, erfc(abs(z) / 2.0.squareRoot()))
        }
    }
}
