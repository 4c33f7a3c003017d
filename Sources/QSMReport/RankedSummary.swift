/// A Markdown table ranking methods by the mean of one metric over seeds, with 95 % intervals and
/// a paired Wilcoxon signed-rank p-value against the top-ranked method.
///
/// Values of different methods are paired by position (seed i of every method is the same
/// phantom realisation); when the methods have different numbers of values the p-value column
/// shows "–". Methods with a NaN mean (a diverged run) rank last.
public struct RankedSummary: Sendable {
    /// One method's values of the metric, one per seed in a common seed order.
    public struct Entry: Sendable, Equatable {
        /// Method name, e.g. "tkd".
        public var method: String
        /// Metric value per seed.
        public var values: [Double]

        /// An entry from its parts.
        public init(method: String, values: [Double]) {
            self.method = method
            self.values = values
        }
    }

    /// Which way is better.
    public enum Order: Sendable {
        /// Smaller is better (RMSE, NRMSE, HFEN).
        case lowerIsBetter
        /// Larger is better (SSIM, XSIM, correlation).
        case higherIsBetter
    }

    /// Metric name shown in the heading, e.g. "NRMSE (%)".
    public var metric: String
    /// Ranking direction.
    public var order: Order
    /// The methods' values.
    public var entries: [Entry]
    /// Confidence level of the intervals.
    public var level = 0.95
    /// Significant digits of a mean shown without an interval.
    public var digits = 3

    /// A summary of `entries` for `metric`.
    public init(metric: String, order: Order, entries: [Entry]) {
        self.metric = metric
        self.order = order
        self.entries = entries
    }

    /// The entries with their intervals, best first (ties share a rank: 1, 1, 3).
    public func ranked() throws(QSMError) -> [(rank: Int, entry: Entry, interval: ConfidenceInterval)] {
        guard !entries.isEmpty else { throw .invalidParameter("ranked summary", "has no methods") }
        var scored: [(entry: Entry, interval: ConfidenceInterval)] = []
        for entry in entries {
            do {
                scored.append((entry, try Statistics.meanConfidenceInterval(entry.values, level: level)))
            } catch {
                throw error.withSubject("\(metric) of \(entry.method)")
            }
        }
        let better: (Double, Double) -> Bool = order == .lowerIsBetter ? (<) : (>)
        let sorted = scored.enumerated().sorted { lhs, rhs in
            let a = lhs.element.interval.mean, b = rhs.element.interval.mean
            if a.isNaN != b.isNaN { return b.isNaN }
            if a != b, !a.isNaN { return better(a, b) }
            return lhs.offset < rhs.offset  // stable: input order breaks ties
        }.map(\.element)
        var result: [(rank: Int, entry: Entry, interval: ConfidenceInterval)] = []
        for (index, item) in sorted.enumerated() {
            let previous = result.last
            let tied = previous.map { $0.interval.mean == item.interval.mean } ?? false
            result.append((tied ? previous!.rank : index + 1, item.entry, item.interval))
        }
        return result
    }

    /// Columns: rank, method, mean ± CI half-width, SD, n, Wilcoxon p against rank 1.
    public func table() throws(QSMError) -> MarkdownTable {
        let ranked = try ranked()
        let percent = NumberFormat.significant(level * 100, digits: 2)
        var table = try MarkdownTable(
            header: ["Rank", "Method", "\(metric) (mean ± \(percent) % CI)", "SD", "n", "p vs. #1"],
            alignments: [.right, .left, .right, .right, .right, .right])
        let best = ranked[0].entry
        for (index, item) in ranked.enumerated() {
            let sd = item.interval.standardDeviation
            let p: String
            if index == 0 {
                p = "–"
            } else if item.entry.values.count == best.values.count,
                      let test = try? WilcoxonSignedRank(item.entry.values, best.values) {
                p = NumberFormat.significant(test.pValue, digits: 2)
            } else {
                p = "–"
            }
            try table.append(["\(item.rank)", item.entry.method,
                              NumberFormat.meanWithInterval(item.interval, digits: digits),
                              sd.isNaN ? "–" : NumberFormat.significant(sd, digits: 2),
                              "\(item.entry.values.count)", p])
        }
        return table
    }

    /// The table as Markdown.
    public func render() throws(QSMError) -> String { try table().render() }
}
