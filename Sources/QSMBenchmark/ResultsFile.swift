import Foundation
import QSMIO
import QSMMetrics

/// `results.h5`: one group per run (attributes, metrics, stage timings, optional volumes) and a
/// summary table. Schema: docs/RESULTS.md. The full run record is kept as JSON in each run
/// group's `record` attribute, so `qsmbench report` can regenerate the Markdown from the file alone.
public enum ResultsFile {
    /// Headline metrics, in summary-table order.
    public static let summaryMetrics = ["nrmse", "nrmse_detrended", "rmse", "hfen", "ssim", "xsim", "cc", "nmi"]

    /// Writes `results` (atomically) with provenance attributes on the root.
    public static func write(_ results: [RunResult], suite: Suite, to path: String, provenance: [String: String],
                             volumes: [String: StoredVolumes] = [:]) throws(QSMError) {
        let file = try HDF5File.create(path, atomic: true)
        let root = try file.root
        try root.setAttribute("format", value: "qsmbench-results/1")
        try root.setAttribute("suite", value: suite.name)
        try root.setAttribute("suite_file", value: suite.file)
        try root.setAttribute("metric_convention", value: suite.convention)
        for (key, value) in provenance.sorted(by: { $0.key < $1.key }) { try root.setAttribute(key, value: value) }

        let encoder = BenchJSON.encoder()
        for result in results {
            let group = try file.createGroup("/runs/\(result.key)")
            let spec = result.spec
            try group.setAttribute("identifier", value: result.identifier)
            try group.setAttribute("phantom", value: spec.phantom.name)
            try group.setAttribute("phantom_kind", value: spec.phantom.kind)
            try group.setAttribute("matrix", value: [spec.phantom.matrix.x, spec.phantom.matrix.y, spec.phantom.matrix.z])
            try group.setAttribute("voxel_size_mm", value: [spec.phantom.voxelSize.x, spec.phantom.voxelSize.y, spec.phantom.voxelSize.z])
            try group.setAttribute("protocol", value: spec.acquisition.name)
            try group.setAttribute("field_strength_T", value: spec.acquisition.fieldStrength)
            try group.setAttribute("echo_times_s", value: spec.acquisition.echoTimes)
            try group.setAttribute("snr", value: spec.acquisition.snr.isFinite ? spec.acquisition.snr : -1)
            try group.setAttribute("head_rotation_deg", value: [spec.acquisition.rotationDegrees.x,
                                                                spec.acquisition.rotationDegrees.y, spec.acquisition.rotationDegrees.z])
            try group.setAttribute("pipeline", value: spec.pipeline.name)
            let methods: [String] = spec.pipeline.methods.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            try group.setAttribute("methods", value: .strings(methods))
            let parameters: [String] = spec.pipeline.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            try group.setAttribute("parameters", value: .strings(parameters))
            try group.setAttribute("seed", value: Int(spec.seed))
            try group.setAttribute("wall_ms", value: result.wallMilliseconds)
            try group.setAttribute("simulation_ms", value: result.simulationMilliseconds)
            try group.setAttribute("peak_memory_mib", value: result.peakMemoryMiB)
            for (key, value) in result.conventions.record { try group.setAttribute("convention_\(key)", value: value) }
            try group.setAttribute("metric_convention", value: result.metricConvention)
            try group.setAttribute("tool_version", value: result.toolVersion)
            try group.setAttribute("finished", value: result.finished)
            if let json = try? encoder.encode(result), let text = String(data: json, encoding: .utf8) {
                try group.setAttribute("record", value: text)
            }
            let metrics = try file.createGroup("/runs/\(result.key)/metrics")
            for (key, value) in headline(result.scores) { try metrics.setAttribute(key, value: value ?? .nan) }
            for (name, scores) in result.attribution.sorted(by: { $0.key < $1.key }) {
                let g = try file.createGroup("/runs/\(result.key)/attribution/\(name)")
                for (key, value) in headline(scores) { try g.setAttribute(key, value: value ?? .nan) }
            }
            try file.writeDataset("/runs/\(result.key)/stages/name", values: result.stages.map { "\($0.kind.key):\($0.method)" })
            try file.writeDataset("/runs/\(result.key)/stages/milliseconds", values: result.stages.map(\.milliseconds),
                                  shape: [result.stages.count], options: .contiguous)
            try file.writeDataset("/runs/\(result.key)/stages/ffts", values: result.stages.map { Int64($0.transforms) },
                                  shape: [result.stages.count], options: .contiguous)
            if let stored = volumes[result.key] {
                try file.writeVolume(stored.chi, to: "/runs/\(result.key)/chi")
                var error = stored.chi
                for i in error.voxels.indices { error.voxels[i] -= stored.truth.voxels[i] }
                try file.writeVolume(error, to: "/runs/\(result.key)/error")
                try file.writeVolume(stored.mask.map { UInt8($0 ? 1 : 0) }, to: "/runs/\(result.key)/mask")
            }
        }
        // Summary: one row per run.
        let n = results.count
        if n > 0 {
            try file.writeDataset("/summary/identifier", values: results.map(\.identifier))
            try file.writeDataset("/summary/key", values: results.map(\.key))
            try file.writeDataset("/summary/phantom", values: results.map(\.spec.phantom.name))
            try file.writeDataset("/summary/protocol", values: results.map(\.spec.acquisition.name))
            try file.writeDataset("/summary/pipeline", values: results.map(\.spec.pipeline.name))
            try file.writeDataset("/summary/seed", values: results.map { Int64($0.spec.seed) }, shape: [n], options: .contiguous)
            for metric in summaryMetrics {
                let values = results.map { r in headline(r.scores).first { $0.key == metric }?.value.flatMap { $0 } ?? .nan }
                try file.writeDataset("/summary/\(metric)", values: values, shape: [n], options: .contiguous)
            }
        }
        try file.close()
    }

    /// The run records of a results file (from each run's `record` attribute), in file order.
    public static func read(_ path: String) throws(QSMError) -> (results: [RunResult], attributes: [String: String]) {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        guard (try? file.root.attribute("format").stringValue) == "qsmbench-results/1" else {
            throw .invalidFile(path, "is not a qsmbench results file (no format attribute qsmbench-results/1)")
        }
        var attributes: [String: String] = [:]
        for (key, value) in try file.root.attributes() { attributes[key] = value.stringValue ?? value.description }
        var results: [RunResult] = []
        let order = file.exists("/summary/key") ? try file.dataset("/summary/key").readStrings() : []
        for key in order {
            guard let text = try file.group("/runs/\(key)").attribute("record").stringValue,
                  let result = try? BenchJSON.decoder().decode(RunResult.self, from: Data(text.utf8)) else {
                throw .invalidFile(path, "/runs/\(key): record attribute is missing or unreadable")
            }
            results.append(result)
        }
        return (results, attributes)
    }

    /// The volumes stored for a run (χ estimate, truth = estimate − error, mask), if any.
    public static func volumes(_ path: String, key: String) throws(QSMError) -> StoredVolumes? {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        guard file.exists("/runs/\(key)/chi") else { return nil }
        let chi: Volume<Float> = try file.readVolume("/runs/\(key)/chi")
        var truth = chi
        let error: Volume<Float> = try file.readVolume("/runs/\(key)/error")
        for i in truth.voxels.indices { truth.voxels[i] -= error.voxels[i] }
        let mask: Volume<UInt8> = try file.readVolume("/runs/\(key)/mask")
        return StoredVolumes(chi: chi, truth: truth, mask: mask.map { $0 != 0 })
    }

    /// Keys of `headline`, in order.
    public static let headlineKeys = ["nrmse", "nrmse_detrended", "rmse", "hfen", "ssim", "xsim", "cc", "nmi",
                                      "dgm_slope", "coverage"]

    /// Headline metrics of `scores` as (key, value) in a fixed order.
    static func headline(_ scores: Scores) -> [(key: String, value: Double?)] {
        [("nrmse", scores.nrmse), ("nrmse_detrended", scores.nrmseDetrended), ("rmse", scores.rmse),
         ("hfen", scores.hfen), ("ssim", scores.ssim), ("xsim", scores.xsim), ("cc", scores.cc), ("nmi", scores.nmi),
         ("dgm_slope", scores.dgmSlope), ("coverage", scores.coverage)]
    }
}
