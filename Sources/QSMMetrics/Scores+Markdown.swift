extension Scores {
    /// The scores as Markdown: headline table, regions, per-label statistics, definitions.
    public var markdown: String {
        var lines = ["# qsmbench scores", "",
                     "Convention `\(convention.rawValue)`, qsmbench \(version), \(maskVoxels) mask voxels.", "",
                     "| metric | value |", "|---|---:|"]
        for (key, value) in headline { lines.append("| \(key) | \(Self.text(value)) |") }
        if let dgmSlope { lines.append("| dgm_slope | \(Self.text(dgmSlope)) |") }
        if let dgmLinearity { lines.append("| dgm_linearity | \(Self.text(dgmLinearity)) |") }
        if let calcification {
            lines.append("| calcification moment_deviation | \(Self.text(calcification.momentDeviation)) |")
            lines.append("| calcification streak | \(Self.text(calcification.streak)) |")
        }
        lines += ["", "| region | voxels | nrmse_demeaned | nrmse_detrended |", "|---|---:|---:|---:|"]
        for name in ["whole_brain", "tissue", "blood", "dgm"] {
            guard let r = regions[name] else { continue }
            lines.append("| \(name) | \(r.voxels) | \(Self.text(r.nrmseDemeaned)) | \(Self.text(r.nrmseDetrended)) |")
        }
        if !labels.isEmpty {
            lines += ["", "| label | name | voxels | recon mean ± std (ppm) | truth mean ± std (ppm) |",
                      "|---:|---|---:|---:|---:|"]
            for l in labels {
                lines.append("| \(l.label) | \(l.name) | \(l.voxels) | \(Self.text(l.reconMean)) ± \(Self.text(l.reconStd)) | \(Self.text(l.truthMean)) ± \(Self.text(l.truthStd)) |")
            }
        }
        lines += ["", "Definitions:", ""]
        for key in definitions.keys.sorted() { lines.append("- \(definitions[key]!)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Six significant digits (enough to compare with published tables), "—" when undefined.
    static func text(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "—" }
        guard value != 0 else { return "0" }
        var magnitude = 0
        var scaled = abs(value)
        while scaled >= 10 { scaled /= 10; magnitude += 1 }
        while scaled < 1 { scaled *= 10; magnitude -= 1 }
        let decimals = max(0, 5 - magnitude)
        var p = 1.0
        for _ in 0..<decimals { p *= 10 }
        let rounded = (value * p).rounded() / p
        guard decimals > 0, abs(value) < 1e15 else { return "\(rounded)" }
        let negative = rounded < 0
        let units = (abs(rounded) * p).rounded()
        let whole = Int(units / p), fraction = Int(units - Double(whole) * p)
        var fractionText = String(fraction)
        fractionText = String(repeating: "0", count: decimals - fractionText.count) + fractionText
        return (negative ? "-" : "") + "\(whole).\(fractionText)"
    }
}
