import Foundation
import QSMReport
import Testing

@Suite struct StudentTTests {
    /// Published two-sided 95 % critical values (any t table, e.g. NIST/SEMATECH e-Handbook of
    /// Statistical Methods §1.3.6.7.2), given to three decimals: tolerance half a unit in the last place.
    @Test(arguments: [(1.0, 12.706), (4.0, 2.776), (30.0, 2.042), (Double.infinity, 1.960)])
    func matchesThePublishedTable(_ degreesOfFreedom: Double, _ expected: Double) throws {
        let t = try StudentT(degreesOfFreedom: degreesOfFreedom).quantile(0.975)
        #expect(abs(t - expected) <= 5e-4)
    }

    /// Reference quantiles from scipy 1.17.1, `scipy.stats.t.ppf(p, df)` / `scipy.stats.norm.ppf(p)`.
    /// Tolerance 1e-9 relative: the solver stops at ~1e-15 and the incomplete beta is good to
    /// ~1e-14, so 1e-9 leaves room for scipy's own (boost) error.
    @Test(arguments: [
        (0.975, 1.0, 12.706204736174694), (0.975, 4.0, 2.7764451051977934), (0.975, 30.0, 2.0422724563012378),
        (0.995, 2.5, 7.163728138948783), (0.9, 1e6, 1.281552412129939), (0.025, 7.0, -2.3646242515927844),
        (0.9995, 3.0, 12.923978636687961), (0.975, Double.infinity, 1.959963984540054),
    ])
    func matchesScipyQuantiles(_ probability: Double, _ degreesOfFreedom: Double, _ expected: Double) throws {
        let t = try StudentT(degreesOfFreedom: degreesOfFreedom).quantile(probability)
        #expect(abs(t - expected) <= 1e-9 * abs(expected))
    }

    /// scipy 1.17.1: `scipy.stats.t.cdf(2.0, 5)` and `scipy.stats.t.sf(40, 3)`; the quantile inverts the CDF.
    @Test func cumulativeProbabilityMatchesScipyAndInvertsTheQuantile() throws {
        #expect(abs(try StudentT(degreesOfFreedom: 5).cumulativeProbability(2.0) - 0.9490302605850708) <= 1e-13)
        #expect(abs(try StudentT(degreesOfFreedom: 3).cumulativeProbability(-40) - 1.7190340394579253e-05) <= 1e-17)
        let distribution = try StudentT(degreesOfFreedom: 9)
        for p in [0.001, 0.2, 0.5, 0.8, 0.999] {
            #expect(abs(distribution.cumulativeProbability(try distribution.quantile(p)) - p) <= 1e-13)
        }
    }

    /// Large ν: mpmath 1.3 at 40 digits, `betainc(5e5, 0.5, 0, 1e6/(1e6 + 4), regularized=True)/2`
    /// = P(T ≤ −2 | ν = 10⁶) = 0.022750266925659604. Measured error is 4e-11 relative (the
    /// continued fraction converges slowly here); 1e-10 bounds it.
    @Test func largeDegreesOfFreedomKeepTheirDigits() throws {
        let p = try StudentT(degreesOfFreedom: 1e6).cumulativeProbability(-2)
        #expect(abs(p - 0.022750266925659604) <= 1e-10 * 0.022750266925659604)
    }

    @Test func badArgumentsThrow() {
        #expect(throws: QSMError.invalidParameter("degrees of freedom", "0.0 is not positive")) {
            try StudentT(degreesOfFreedom: 0)
        }
        #expect(throws: QSMError.invalidParameter("probability", "1.0 is not inside (0, 1)")) {
            try StudentT(degreesOfFreedom: 3).quantile(1)
        }
    }
}

@Suite struct StatisticsTests {
    /// Hand-computed: values 2, 4, 4, 4, 5, 5, 7, 9 have mean 5 and Σ(x − 5)² = 32, so s = √(32/7).
    @Test func meanAndSampleStandardDeviation() throws {
        let values: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]
        #expect(try Statistics.mean(values) == 5)
        #expect(abs(try Statistics.sampleStandardDeviation(values) - (32.0 / 7).squareRoot()) <= 1e-15)
    }

    /// The two-pass formula keeps its digits where Σx² − n·m² would lose all of them.
    @Test func standardDeviationSurvivesALargeOffset() throws {
        let values = [1e9 + 1, 1e9 + 2, 1e9 + 3]
        #expect(abs(try Statistics.sampleStandardDeviation(values) - 1) <= 1e-6)
    }

    /// CI half-width = t(0.975, 7)·s/√8 with t from the table value 2.365 (three decimals, hence the tolerance).
    @Test func confidenceIntervalUsesStudentT() throws {
        let values: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]
        let interval = try Statistics.meanConfidenceInterval(values)
        let expected = 2.365 * (32.0 / 7).squareRoot() / 8.0.squareRoot()
        #expect(abs(interval.halfWidth - expected) <= 5e-4 * (32.0 / 7).squareRoot() / 8.0.squareRoot())
        #expect(interval.lower < 5 && interval.upper > 5 && interval.count == 8 && interval.level == 0.95)
        // A 99 % interval is wider than the 95 % one.
        #expect(try Statistics.meanConfidenceInterval(values, level: 0.99).halfWidth > interval.halfWidth)
    }

    @Test func singleValueHasNoInterval() throws {
        let interval = try Statistics.meanConfidenceInterval([0.3])
        #expect(interval.mean == 0.3 && interval.halfWidth.isNaN && interval.standardDeviation.isNaN)
    }

    /// Paired: differences 1, 2, 3 → mean 2, s = 1, half-width t(0.975, 2)/√3 = 4.303/√3 (table value).
    @Test func pairedDifferences() throws {
        let interval = try Statistics.pairedDifference([11, 22, 33], [10, 20, 30])
        #expect(abs(interval.mean - 2) <= 1e-12)
        #expect(abs(interval.halfWidth - 4.303 / 3.0.squareRoot()) <= 5e-4)
        #expect(throws: QSMError.mismatch("paired values", "3 values cannot pair with 2")) {
            try Statistics.pairedDifference([1, 2, 3], [1, 2])
        }
    }

    @Test func emptyInputsThrow() {
        #expect(throws: QSMError.invalidParameter("values", "the list is empty; a mean needs at least one value")) {
            try Statistics.mean([])
        }
        #expect(throws: QSMError.invalidParameter("values", "1 value(s); a standard deviation needs at least two")) {
            try Statistics.sampleStandardDeviation([1])
        }
    }
}

@Suite struct WilcoxonSignedRankTests {
    /// Untied, n = 10. scipy 1.17.1: `scipy.stats.wilcoxon([0.7, -0.6, 1.3, 1.0, 1.2, -0.4, 1.4,
    /// -0.3, 0.8, 1.1], method="exact")` → statistic 6.0, pvalue 0.02734375 (= 28/1024, exact).
    @Test func exactUntied() throws {
        let test = try WilcoxonSignedRank(differences: [0.7, -0.6, 1.3, 1.0, 1.2, -0.4, 1.4, -0.3, 0.8, 1.1])
        #expect(test.method == .exact && test.count == 10)
        #expect(test.statistic == 6 && test.positiveRankSum == 49 && test.negativeRankSum == 6)
        #expect(test.pValue == 0.02734375)  // a ratio of small integers: exact in binary
    }

    /// All six differences positive: only 1 of 64 sign patterns is as extreme on each side, p = 2/64.
    /// scipy 1.17.1: `scipy.stats.wilcoxon([1, 2, 3, 4, 5, 6], method="exact")` → 0.03125.
    @Test func exactAllPositive() throws {
        let test = try WilcoxonSignedRank([2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1])
        #expect(test.pValue == 0.03125 && test.statistic == 0)
    }

    /// Ties and a zero. scipy 1.17.1: `scipy.stats.wilcoxon([1.5, -0.5, 2.0, 1.5, 0, 3.0, -1.5, 2.0,
    /// 0.5], zero_method="wilcox", method=scipy.stats.PermutationMethod(n_resamples=np.inf))`
    /// (the exact permutation distribution of the tied ranks) → statistic 5.5, pvalue 0.1015625.
    @Test func exactWithTiesAndZero() throws {
        let test = try WilcoxonSignedRank(differences: [1.5, -0.5, 2.0, 1.5, 0, 3.0, -1.5, 2.0, 0.5])
        #expect(test.method == .exact && test.count == 8)
        #expect(test.statistic == 5.5)
        #expect(test.pValue == 0.1015625)  // 26/256, exact in binary
    }

    /// n = 25, the exact limit. scipy 1.17.1: `scipy.stats.wilcoxon(d, method="exact")` with
    /// d[k] = (-1)**(k*k//3) * (k+1) * 0.25 → statistic 156.0, pvalue 0.8739878535270691.
    @Test func exactAtTheLimit() throws {
        let d: [Double] = (0..<25).map { (k: Int) -> Double in
            let sign: Double = (k * k / 3) % 2 == 0 ? 1 : -1
            return sign * Double(k + 1) * 0.25
        }
        let test = try WilcoxonSignedRank(differences: d)
        #expect(test.method == .exact && test.statistic == 156)
        #expect(abs(test.pValue - 0.8739878535270691) <= 1e-14)  // sums of 2^25 counts: rounding only
    }

    /// n = 31 non-zero (one zero dropped) with many ties. scipy 1.17.1:
    /// `scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic")`
    /// → statistic 217.0, pvalue 0.5494970174724729.
    @Test func normalApproximationWithTieAndContinuityCorrection() throws {
        let d = [0.3, 0.6, 0.0, -0.6, -0.2, -0.7, 0.4, 1.6, -0.2, -0.3, 0.8, 0.7, 0.4, -0.6, 0.3, 1.0, -1.0,
                 -0.2, -1.6, -1.0, -1.5, 0.1, -1.0, 0.6, 0.5, 0.1, -2.2, -0.2, 0.3, 0.4, -1.2, -0.2]
        let test = try WilcoxonSignedRank(differences: d)
        #expect(test.method == .normalApproximation && test.count == 31)
        #expect(test.statistic == 217)
        #expect(abs(test.pValue - 0.5494970174724729) <= 1e-12)  // erfc in both: agreement to rounding
    }

    @Test func degenerateAndBadInputs() throws {
        let same = try WilcoxonSignedRank([1, 2, 3], [1, 2, 3])
        #expect(same.method == .noNonzeroDifferences && same.pValue == 1 && same.count == 0)
        #expect(throws: QSMError.invalidParameter("paired differences", "value 2 is nan, not finite")) {
            try WilcoxonSignedRank(differences: [1, .nan])
        }
    }
}
