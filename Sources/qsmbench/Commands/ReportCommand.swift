import ArgumentParser
import Foundation
import QSMBenchmark

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Regenerate the Markdown report (and its figures) from a results.h5 alone.")

    @Argument(help: "A results.h5 written by `qsmbench bench`.") var results: String
    @Option(help: "Report file (its figures go beside it, in figures/).") var out: String?

    func run() throws {
        let (records, attributes) = try ResultsFile.read(results)
        let target = out ?? (URL(fileURLWithPath: results).deletingLastPathComponent().path + "/report.md")
        let url = URL(fileURLWithPath: target)
        var provenance = attributes.filter { ["tool_version", "command_line", "machine", "created"].contains($0.key) }
        provenance["regenerated_from"] = results
        let path = results
        let report = BenchReport(results: records, failures: [], suiteName: attributes["suite"] ?? "suite",
                                 provenance: provenance, volumes: { try? ResultsFile.volumes(path, key: $0) })
        try report.write(to: url.deletingLastPathComponent().path, name: url.lastPathComponent)
        print("wrote \(target)")
    }
}
