import ArgumentParser
import QSMBenchmark
import QSMIO

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Regression gate: compare a candidate results.h5 with a baseline, run by run.",
        discussion: """
            Runs are matched by identifier (phantom/protocol/pipeline/seed). A configuration \
            (phantom/protocol/pipeline) regresses when its mean worsening over the seeds exceeds \
            the tolerance and, with two or more seeds, the 95 % confidence half-width of the paired \
            differences (the seed-to-seed spread). Exit status 1 when a configuration regresses or \
            a baseline run is missing, 2 for unusable input, 0 otherwise. Default tolerance: 0.5 \
            for % metrics (nrmse, hfen, rmse), 0.005 for ssim, xsim, cc, nmi.
            """)

    @Argument(help: "Baseline results.h5.") var baseline: String
    @Argument(help: "Candidate results.h5.") var candidate: String
    @Option(help: "Metric to compare.") var metric: String = "nrmse"
    @Option(help: "Allowed worsening in the metric's units.") var tolerance: Double?
    @Option(help: "Also write the comparison as Markdown to this file.") var markdown: String?

    func run() throws {
        let base = try ResultsFile.read(baseline).results
        let cand = try ResultsFile.read(candidate).results
        let comparison = try Comparison(baseline: base, candidate: cand, metric: metric, tolerance: tolerance)
        let text = try comparison.markdown()
        print(text)
        if let markdown { try AtomicFile.write(Array(text.utf8), to: markdown) }
        if !comparison.passed {
            let regressed = comparison.configurations.filter(\.regressed).count
            throw QSMError.checkFailed(candidate, "\(regressed) configuration(s) regressed on \(metric), "
                                       + "\(comparison.missing.count) baseline run(s) missing")
        }
    }
}
