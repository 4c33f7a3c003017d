import QSMMetrics
import QSMReport

/// The regression gate: runs of two results files matched by identifier, one metric compared.
///
/// The verdict is per configuration (phantom/protocol/pipeline, over its seeds): a configuration
/// regresses when the mean worsening over its matched seeds exceeds the tolerance and, with two or
/// more seeds, also exceeds the seed-to-seed spread — the 95 % confidence half-width of the paired
/// differences (Student's t). A single noisy seed therefore cannot fail the gate on its own; a
/// consistent shift can. A metric that becomes non-finite where the baseline was finite regresses.
public struct Comparison: Sendable {
    /// One configuration (phantom/protocol/pipeline) over its matched seeds.
    public struct Configuration: Sendable {
        /// `phantom/protocol/pipeline`.
        public var name: String
        /// Matched seeds.
        public var count: Int
        /// Mean candidate − baseline over the seeds.
        public var meanDifference: Double
        /// 95 % confidence half-width of the paired differences; NaN with one seed.
        public var spread: Double
        /// Whether the configuration fails the gate.
        public var regressed: Bool
    }

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
        /// Whether this seed alone is worse than the tolerance allows (informative; the gate is per configuration).
        public var regressed: Bool
    }

    /// Metric key (`nrmse`, `hfen`, `xsim`, …).
    public var metric: String
    /// Allowed worsening, in the metric's units.
    public var tolerance: Double
    /// Matched runs.
    public var rows: [Row]
    /// Matched runs grouped by configuration, in baseline order; the gate's verdicts.
    public var configurations: [Configuration]
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
        var names: [String] = [], groups: [String: [Row]] = [:]
        for row in rows {
            let name = Self.configurationName(row.identifier)
            if groups[name] == nil { names.append(name) }
            groups[name, default: []].append(row)
        }
        configurations = try names.map { (name) throws(QSMError) -> Configuration in
            let group = groups[name]!
            let nonFinite = group.contains { !$0.candidate.isFinite && $0.baseline.isFinite }
            let finite = group.filter { $0.candidate.isFinite && $0.baseline.isFinite }
            guard !finite.isEmpty else {
                return Configuration(name: name, count: group.count, meanDifference: .nan, spread: .nan, regressed: nonFinite)
            }
            let interval = try Statistics.pairedDifference(finite.map(\.candidate), finite.map(\.baseline))
            let worsening = worseSign * interval.mean
            let beyondSpread = finite.count < 2 || worsening > interval.halfWidth
            return Configuration(name: name, count: group.count, meanDifference: interval.mean, spread: interval.halfWidth,
                                 regressed: nonFinite || (worsening > tolerance && beyondSpread))
        }
        self.missing = missing
        self.added = candidate.map(\.identifier).filter { !baselineIdentifiers.contains($0) }
    }

    /// Whether the gate passes.
    public var passed: Bool { missing.isEmpty && !configurations.contains(where: \.regressed) }

    /// `phantom/protocol/pipeline` of a run identifier `phantom/protocol/pipeline/seed-N`.
    static func configurationName(_ identifier: String) -> String {
        guard let slash = identifier.lastIndex(of: "/"), identifier[identifier.index(after: slash)...].hasPrefix("seed-") else {
            return identifier
        }
        return String(identifier[..<slash])
    }

    /// A Markdown summary: verdict, per-run table, paired difference over all runs.
    public func markdown() throws(QSMError) -> String {
        let failed = configurations.filter(\.regressed).count
        var out = ["# qsmbench compare: \(metric)\n",
                   passed ? "**PASS**: no configuration worsened by more than \(tolerance) beyond its seed-to-seed spread."
                       : "**FAIL**: \(failed) configuration(s) worsened by more than \(tolerance) beyond their seed-to-seed "
                       + "spread; \(missing.count) baseline run(s) missing.",
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
                              NumberFormat.significant(row.difference, digits: 3), row.regressed ? "worse" : "ok"])
        }
        out.append(table.render())
        var perConfiguration = try MarkdownTable(header: ["configuration", "seeds", "mean change", "95 % spread", "verdict"],
                                                 alignments: [.left, .right, .right, .right, .left])
        for c in configurations {
            try perConfiguration.append([c.name, "\(c.count)", NumberFormat.significant(c.meanDifference, digits: 3),
                                         c.spread.isNaN ? "–" : NumberFormat.significant(c.spread, digits: 3),
                                         c.regressed ? "regressed" : "ok"])
        }
        out.append("Per configuration (the gate):\n")
        out.append(perConfiguration.render())
        if !missing.isEmpty { out.append("Missing from the candidate:\n" + missing.map { "- `\($0)`" }.joined(separator: "\n") + "\n") }
        if !added.isEmpty { out.append("Only in the candidate:\n" + added.map { "- `\($0)`" }.joined(separator: "\n") + "\n") }
        return out.joined(separator: "\n")
    }
}
