import QSMMetrics
import QSMReport

/// The regression gate: runs of two results files matched by identifier, one metric compared.
public struct Comparison: Sendable {
    /// One matched run.
    public struct Row: Sendable {
        /// Run identifier.
        public var identifier: String
        /// Baseline value.
        public var baseline: Double
        /// Candidate value.
        public var candidate: Double
        /// candidate − baseline.
        public var difference: Double { candidate - baseline }
        /// Whether the change is worse than the tolerance allows.
        public var regressed: Bool
    }

    /// Metric key (`nrmse`, `hfen`, `xsim`, …).
    public var metric: String
    /// Allowed worsening, in the metric's units.
    public var tolerance: Double
    /// Matched runs.
    public var rows: [Row]
    /// Runs of the baseline missing from the candidate (a regression: the candidate lost coverage).
    public var missing: [String]
    /// Runs only in the candidate (reported, not a regression).
    public var added: [String]

    /// Metrics where larger is better.
    public static let higherIsBetter: Set<String> = ["ssim", "xsim", "cc", "nmi", "coverage", "dgm_slope"]
    /// Default tolerance: 0.5 percentage points for % metrics, 0.005 for unit-range ones.
    public static func defaultTolerance(for metric: String) -> Double {
        higherIsBetter.contains(metric) ? 0.005 : 0.5
    }

    /// Compares `candidate` against `baseline` on `metric`.
    public init(baseline: [RunResult], candidate: [RunResult], metric: String, tolerance: Double?) throws(QSMError) {
        let known = ResultsFile.headlineKeys
        guard known.contains(metric) else {
            throw .invalidOption("--metric", "'\(metric)' is not one of \(known.joined(separator: ", "))")
        }
        let tolerance = tolerance ?? Self.defaultTolerance(for: metric)
        guard tolerance >= 0, tolerance.isFinite else { throw .invalidOption("--tolerance", "\(tolerance) must not be negative") }
        self.metric = metric
        self.tolerance = tolerance
        func value(_ r: RunResult) -> Double? { ResultsFile.headline(r.scores).first { $0.key == metric }?.value.flatMap { $0 } }
        var byIdentifier: [String: RunResult] = [:]
        for r in candidate { byIdentifier[r.identifier] = r }
        let baselineIdentifiers = Set(baseline.map(\.identifier))
        var rows: [Row] = [], missing: [String] = []
        let worseSign: Double = Self.higherIsBetter.contains(metric) ? -1 : 1
        for b in baseline {
            guard let c = byIdentifier[b.identifier] else { missing.append(b.identifier); continue }
            guard let bv = value(b), let cv = value(c) else { continue }
            let regressed = worseSign * (cv - bv) > tolerance || (!cv.isFinite && bv.isFinite)
            rows.append(Row(identifier: b.identifier, baseline: bv, candidate: cv, regressed: regressed))
        }
        self.rows = rows
        self.missing = missing
        self.added = candidate.map(\.identifier).filter { !baselineIdentifiers.contains($0) }
    }

    /// Whether the gate passes.
    public var passed: Bool { missing.isEmpty && !rows.contains(where: \.regressed) }

    /// A Markdown summary: verdict, per-run table, paired difference over all runs.
    public func markdown() throws(QSMError) -> String {
        var out = ["# qsmbench compare: \(metric)\n",
                   passed ? "**PASS**: no run worsened by more than \(tolerance)."
                       : "**FAIL**: \(rows.filter(\.regressed).count) run(s) worsened by more than \(tolerance); \(missing.count) missing.",
                   ""]
        if rows.count >= 2 {
            let d = try Statistics.meanConfidenceInterval(rows.map(\.difference))
            out.append("Mean change (candidate − baseline) over \(rows.count) runs: \(NumberFormat.meanWithInterval(d)).\n")
        }
        var table = try MarkdownTable(header: ["run", "baseline", "candidate", "change", "verdict"],
                                      alignments: [.left, .right, .right, .right, .left])
        for row in rows {
            try table.append([row.identifier, NumberFormat.significant(row.baseline, digits: 4),
                              NumberFormat.significant(row.candidate, digits: 4),
                              NumberFormat.significant(row.difference, digits: 3), row.regressed ? "regressed" : "ok"])
        }
        out.append(table.render())
        if !missing.isEmpty { out.append("Missing from the candidate:\n" + missing.map { "- `\($0)`" }.joined(separator: "\n") + "\n") }
        if !added.isEmpty { out.append("Only in the candidate:\n" + added.map { "- `\($0)`" }.joined(separator: "\n") + "\n") }
        return out.joined(separator: "\n")
    }
}
