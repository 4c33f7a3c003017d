import ArgumentParser
import Foundation
import QSMMetrics
import QSMPipeline

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List phantoms, reconstruction methods (with parameters), metrics or metric conventions.",
        discussion: "Without a topic every topic is listed. --json prints one JSON object keyed by topic.")

    enum Topic: String, CaseIterable, ExpressibleByArgument { case phantoms, methods, metrics, conventions }

    @Argument(help: "phantoms, methods, metrics or conventions (default: all).") var topic: Topic?
    @Flag(help: "Machine-readable JSON.") var json = false

    static let phantoms: [(name: String, summary: String)] = [
        ("sphere", "uniformly magnetised sphere, closed-form field (--chi, --radius)"),
        ("cylinder", "infinite cylinder at --angle to B0, closed-form field"),
        ("head", "built-in numerical head (tissue table phantoms/head-tissues.yaml), k-space dipole field"),
        ("chimap", "your χ map and mask (--chi-map, --mask), or a qsm-forward head phantom directory"),
    ]

    static let conventions: [MetricConvention: String] = [
        .default: "qsmbench's QSM-CI-compatible primary set: demeaned and detrended NRMSE, qsm-ci HFEN and XSIM",
        .challenge2016: "2016 reconstruction challenge: RMSE without demeaning, 15³ LoG HFEN, ssim_index3d SSIM",
        .challenge2019: "QSM challenge 2.0: demeaned/detrended NRMSE with eroded tissue and DGM regions",
        .qsmCI: "qsm-ci 0.6.2 score_arrays (the QSM-CI leaderboard), quirks included",
    ]

    func run() throws {
        let topics = topic.map { [$0] } ?? Topic.allCases
        if json {
            var object: [String: Any] = [:]
            for t in topics { object[t.rawValue] = Self.jsonValue(t) }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for (i, t) in topics.enumerated() {
            if topics.count > 1 { print("\(i > 0 ? "\n" : "")\(t.rawValue):") }
            print(Self.text(t), terminator: "")
        }
    }

    static func text(_ topic: Topic) -> String {
        var s = ""
        switch topic {
        case .phantoms:
            for p in phantoms { s += "\(p.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(p.summary)\n" }
        case .methods:
            for m in MethodRegistry.methods {
                s += "\(m.kind.key) \(m.name): \(m.summary)\n"
                for p in m.parameters {
                    s += "    \(m.kind.key).\(p.name) = \(p.defaultValue)  range \(p.validRange)  \(p.documentation)\n"
                }
            }
        case .metrics:
            for (key, definition) in MetricConvention.default.definitions.sorted(by: { $0.key < $1.key }) {
                s += "\(key): \(definition.hasPrefix(key + ": ") ? String(definition.dropFirst(key.count + 2)) : definition)\n"
            }
        case .conventions:
            for c in MetricConvention.allCases { s += "\(c.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(conventions[c] ?? "")\n" }
        }
        return s
    }

    static func jsonValue(_ topic: Topic) -> Any {
        switch topic {
        case .phantoms: return phantoms.map { ["name": $0.name, "summary": $0.summary] }
        case .methods:
            return MethodRegistry.methods.map { m -> [String: Any] in
                ["stage": m.kind.key, "name": m.name, "summary": m.summary,
                 "parameters": m.parameters.map { ["name": $0.name, "default": $0.defaultValue, "range": $0.validRange,
                                                   "documentation": $0.documentation] }]
            }
        case .metrics: return MetricConvention.default.definitions
        case .conventions:
            return MetricConvention.allCases.map { ["name": $0.rawValue, "summary": conventions[$0] ?? "",
                                                    "definitions": $0.definitions] as [String: Any] }
        }
    }
}
