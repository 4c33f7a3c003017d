import Foundation
import QSMIO
import QSMMetrics
import QSMReport

/// The Markdown report of a bench: rankings with 95 % CIs over seeds, paired comparisons, per-stage
/// attribution, sweep plots (SVG), slice montages (PNG), timings and provenance.
public struct BenchReport {
    /// Run records.
    public var results: [RunResult]
    /// Failed runs.
    public var failures: [RunFailure]
    /// Suite name.
    public var suiteName: String
    /// Provenance lines (version, command, machine, date…).
    public var provenance: [String: String]
    /// χ/truth/mask of a run by key, for montages.
    public var volumes: (String) -> StoredVolumes?

    /// A report over `results`.
    public init(results: [RunResult], failures: [RunFailure], suiteName: String, provenance: [String: String],
                volumes: @escaping (String) -> StoredVolumes?) {
        self.results = results
        self.failures = failures
        self.suiteName = suiteName
        self.provenance = provenance
        self.volumes = volumes
    }

    /// Writes `report.md` and its `figures/` into `directory`; returns the report's path.
    @discardableResult
    public func write(to directory: String, name: String = "report.md") throws(QSMError) -> String {
        let figures = directory + "/figures"
        do { try FileManager.default.createDirectory(atPath: figures, withIntermediateDirectories: true) } catch {
            throw .invalidFile(figures, "cannot create: \(error.localizedDescription)")
        }
        var md: [String] = []
        let phantoms = unique(results.map(\.spec.phantom.name))
        let protocols = unique(results.map(\.spec.acquisition.name))
        let pipelines = unique(results.map(\.spec.pipeline.name))
        let seeds = unique(results.map { "\($0.spec.seed)" })
        md.append("# qsmbench report: \(suiteName)\n")
        md.append("\(results.count) runs: \(phantoms.count) phantom(s) × \(protocols.count) protocol(s) × "
                  + "\(pipelines.count) pipeline(s) × \(seeds.count) seed(s). Metric convention: "
                  + "`\(results.first?.metricConvention ?? "default")`. NRMSE is demeaned, in % (lower is better); "
                  + "intervals are 95 % confidence intervals of the mean over seeds (Student t).\n")

        md.append("## Ranking\n")
        for phantom in phantoms {
            for acquisition in protocols {
                let cell = results.filter { $0.spec.phantom.name == phantom && $0.spec.acquisition.name == acquisition }
                guard !cell.isEmpty else { continue }
                md.append("### \(phantom) — \(acquisition)\n")
                let entries = unique(cell.map(\.spec.pipeline.name)).map { pipeline in
                    RankedSummary.Entry(method: pipeline, values: cell.filter { $0.spec.pipeline.name == pipeline }
                                            .compactMap(\.scores.nrmse))
                }.filter { !$0.values.isEmpty }
                if !entries.isEmpty {
                    md.append(try RankedSummary(metric: "NRMSE (%)", order: .lowerIsBetter, entries: entries).render())
                }
                md.append(try metricTable(cell))
                md.append(try pairedComparisons(cell))
            }
        }

        let attributed = results.filter { !$0.attribution.isEmpty }
        if !attributed.isEmpty {
            md.append("## Per-stage attribution\n")
            md.append("Mean NRMSE (%) of the whole pipeline, of background removal + inversion on the true total "
                      + "field, and of the inversion alone on the true local field: the difference between columns "
                      + "is the error each stage adds.\n")
            var table = try MarkdownTable(header: ["phantom", "protocol", "pipeline", "full pipeline",
                                                   "from true total field", "from true local field"],
                                          alignments: [.left, .left, .left, .right, .right, .right])
            for group in groups(attributed) {
                func mean(_ values: [Double?]) -> String {
                    let v = values.compactMap { $0 }
                    return v.isEmpty ? "–" : NumberFormat.significant(v.reduce(0, +) / Double(v.count))
                }
                try table.append([group[0].spec.phantom.name, group[0].spec.acquisition.name, group[0].spec.pipeline.name,
                                  mean(group.map(\.scores.nrmse)),
                                  mean(group.map { $0.attribution["from_true_total_field"]?.nrmse }),
                                  mean(group.map { $0.attribution["inversion_from_true_local_field"]?.nrmse })])
            }
            md.append(table.render())
        }

        let swept = results.filter { $0.spec.acquisition.sweep != nil }
        if !swept.isEmpty {
            md.append("## Sweeps\n")
            var seen = Set<String>()
            for result in swept {
                let sweep = result.spec.acquisition.sweep!
                let id = "\(result.spec.phantom.name)|\(sweep.base)|\(sweep.parameter)"
                guard seen.insert(id).inserted else { continue }
                let points = swept.filter {
                    $0.spec.phantom.name == result.spec.phantom.name && $0.spec.acquisition.sweep?.base == sweep.base
                        && $0.spec.acquisition.sweep?.parameter == sweep.parameter
                }
                var series: [SVGPlot.Series] = []
                for pipeline in unique(points.map(\.spec.pipeline.name)) {
                    var plotted: [SVGPlot.Point] = []
                    let mine = points.filter { $0.spec.pipeline.name == pipeline }
                    for x in unique(mine.map { "\($0.spec.acquisition.sweep!.value)" }) {
                        let values = mine.filter { "\($0.spec.acquisition.sweep!.value)" == x }.compactMap(\.scores.nrmse)
                        guard let xv = Double(x), xv.isFinite, !values.isEmpty else { continue }
                        if values.count > 1 {
                            plotted.append(SVGPlot.Point(x: xv, interval: try Statistics.meanConfidenceInterval(values)))
                        } else {
                            plotted.append(SVGPlot.Point(x: xv, y: values[0]))
                        }
                    }
                    if !plotted.isEmpty { series.append(SVGPlot.Series(name: pipeline, points: plotted.sorted { $0.x < $1.x })) }
                }
                guard !series.isEmpty else { continue }
                let labels = ["snr": "SNR", "b0": "B0 (T)", "te": "first TE (ms)", "echoes": "echoes",
                              "voxel": "voxel size (mm)", "orientation": "head tilt (degrees)"]
                let plot = SVGPlot(title: "\(result.spec.phantom.name): NRMSE vs \(labels[sweep.parameter] ?? sweep.parameter)",
                                   xLabel: labels[sweep.parameter] ?? sweep.parameter, yLabel: "NRMSE (%)", series: series,
                                   logarithmicX: sweep.parameter == "snr")
                let file = "sweep-\(slug(result.spec.phantom.name))-\(slug(sweep.base))-\(sweep.parameter).svg"
                try plot.write(to: figures + "/" + file)
                md.append("![NRMSE vs \(sweep.parameter)](figures/\(file))\n")
                if swept.contains(where: { !$0.spec.acquisition.snr.isFinite }) && sweep.parameter == "snr" {
                    md.append("Noise-free points (SNR = ∞) are not plotted on the logarithmic axis.\n")
                }
            }
        }

        md.append("## Slice montages\n")
        md.append("Truth, estimate and error (estimate − truth) through the volume centre; χ window −0.15…+0.25 ppm, "
                  + "error ±0.1 ppm; first seed of each run.\n")
        var montageCount = 0
        for result in results where result.spec.seed == results.first(where: {
            $0.spec.phantom.name == result.spec.phantom.name && $0.spec.acquisition.name == result.spec.acquisition.name
                && $0.spec.pipeline.name == result.spec.pipeline.name
        })?.spec.seed {
            guard let stored = volumes(result.key) else { continue }
            var montage = try SliceMontage.truthEstimateError(truth: stored.truth, estimate: stored.chi, mask: stored.mask)
            montage.title = result.identifier
            let file = "montage-\(result.key).png"
            try montage.render().write(to: figures + "/" + file)
            md.append("**\(result.identifier)**\n\n![\(result.identifier)](figures/\(file))\n")
            montageCount += 1
        }
        if montageCount == 0 { md.append("No volumes were stored.\n") }

        md.append("## All runs\n")
        var all = try MarkdownTable(header: ["run", "NRMSE (%)", "HFEN (%)", "SSIM", "XSIM", "wall time (s)"],
                                    alignments: [.left, .right, .right, .right, .right, .right])
        for r in results {
            func text(_ value: Double?) -> String { value.map { NumberFormat.significant($0, digits: 4) } ?? "–" }
            try all.append(["`\(r.identifier)`", text(r.scores.nrmse), text(r.scores.hfen), text(r.scores.ssim),
                            text(r.scores.xsim), NumberFormat.significant(r.wallMilliseconds / 1000)])
        }
        md.append(all.render())

        md.append("## Timing\n")
        var timing = try MarkdownTable(header: ["pipeline", "runs", "mean wall time (s)", "slowest stage", "FFTs"],
                                       alignments: [.left, .right, .right, .left, .right])
        for pipeline in pipelines {
            let runs = results.filter { $0.spec.pipeline.name == pipeline }
            let wall = runs.map { $0.wallMilliseconds - $0.simulationMilliseconds }.reduce(0, +) / Double(runs.count) / 1000
            var stageTotals: [String: Double] = [:]
            for r in runs { for s in r.stages { stageTotals["\(s.kind.key):\(s.method)", default: 0] += s.milliseconds } }
            let slowest = stageTotals.max { $0.value < $1.value }
            let ffts = runs.first?.stages.map(\.transforms).reduce(0, +) ?? 0
            try timing.append([pipeline, "\(runs.count)", NumberFormat.significant(wall),
                               slowest.map { "\($0.key) (\(NumberFormat.significant($0.value / Double(runs.count) / 1000)) s)" } ?? "–",
                               "\(ffts)"])
        }
        md.append(timing.render())

        if !failures.isEmpty {
            md.append("## Failed runs\n")
            for failure in failures { md.append("- `\(failure.identifier)`: \(failure.message)") }
            md.append("")
        }

        md.append("## Provenance\n")
        for (key, value) in provenance.sorted(by: { $0.key < $1.key }) { md.append("- \(key): `\(value)`") }
        if let conventions = results.first?.conventions.record {
            for (key, value) in conventions.sorted(by: { $0.key < $1.key }) { md.append("- \(key): `\(value)`") }
        }
        md.append("")
        let path = directory + "/" + name
        try AtomicFile.write(Array(md.joined(separator: "\n").utf8), to: path)
        return path
    }

    private func metricTable(_ cell: [RunResult]) throws(QSMError) -> String {
        var table = try MarkdownTable(header: ["pipeline", "NRMSE detrended (%)", "HFEN (%)", "XSIM", "CC", "DGM slope"],
                                      alignments: [.left, .right, .right, .right, .right, .right])
        for pipeline in unique(cell.map(\.spec.pipeline.name)) {
            let runs = cell.filter { $0.spec.pipeline.name == pipeline }
            func cellText(_ values: [Double?]) throws(QSMError) -> String {
                let v = values.compactMap { $0 }.filter(\.isFinite)
                guard !v.isEmpty else { return "–" }
                return v.count > 1 ? NumberFormat.meanWithInterval(try Statistics.meanConfidenceInterval(v))
                    : NumberFormat.significant(v[0])
            }
            try table.append([pipeline, try cellText(runs.map(\.scores.nrmseDetrended)), try cellText(runs.map(\.scores.hfen)),
                              try cellText(runs.map(\.scores.xsim)), try cellText(runs.map(\.scores.cc)),
                              try cellText(runs.map(\.scores.dgmSlope))])
        }
        return table.render()
    }

    /// Best pipeline (lowest mean NRMSE) against each other one, paired by seed.
    private func pairedComparisons(_ cell: [RunResult]) throws(QSMError) -> String {
        let pipelines = unique(cell.map(\.spec.pipeline.name))
        let seeds = unique(cell.map(\.spec.seed))
        guard pipelines.count >= 2, seeds.count >= 2 else { return "" }
        func values(_ pipeline: String) -> [UInt64: Double] {
            var out: [UInt64: Double] = [:]
            for r in cell where r.spec.pipeline.name == pipeline { if let v = r.scores.nrmse { out[r.spec.seed] = v } }
            return out
        }
        let means = pipelines.map { p in (p, values(p).values.reduce(0, +) / Double(max(1, values(p).count))) }
        guard let best = means.min(by: { $0.1 < $1.1 })?.0 else { return "" }
        var table = try MarkdownTable(header: ["comparison", "paired NRMSE difference (%)", "Wilcoxon signed-rank p", "seeds"],
                                      alignments: [.left, .right, .right, .right])
        let bestValues = values(best)
        for other in pipelines where other != best {
            let otherValues = values(other)
            let common = seeds.filter { bestValues[$0] != nil && otherValues[$0] != nil }
            guard common.count >= 2 else { continue }
            let a = common.map { otherValues[$0]! }, b = common.map { bestValues[$0]! }
            let difference = try Statistics.pairedDifference(a, b)
            let p: String
            do throws(QSMError) { p = NumberFormat.significant(try WilcoxonSignedRank(a, b).pValue) } catch { p = "–" }
            try table.append(["\(other) − \(best)", NumberFormat.meanWithInterval(difference), p, "\(common.count)"])
        }
        return table.rows.isEmpty ? "" : "Paired comparisons against the best pipeline (positive = worse than \(best)):\n\n" + table.render()
    }

    private func groups(_ runs: [RunResult]) -> [[RunResult]] {
        var order: [String] = []
        var map: [String: [RunResult]] = [:]
        for r in runs {
            let k = "\(r.spec.phantom.name)|\(r.spec.acquisition.name)|\(r.spec.pipeline.name)"
            if map[k] == nil { order.append(k) }
            map[k, default: []].append(r)
        }
        return order.map { map[$0]! }
    }

    private func unique<T: Hashable>(_ values: [T]) -> [T] {
        var seen = Set<T>()
        return values.filter { seen.insert($0).inserted }
    }

    private func slug(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
    }
}
