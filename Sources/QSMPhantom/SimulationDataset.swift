import Foundation
import QSMCore
import QSMIO

/// How phase images are stored.
public enum PhaseScaling: String, Sendable, CaseIterable {
    /// float32 radians in (−π, π], sidecar `Units: rad`.
    case radians
    /// int16 values 0…4095 = (φ + π)·4095/2π without header scaling, as raw Siemens 12-bit phase
    /// (BIDS-MEGRE.md §5); sidecar `Units: arbitrary`. Exercises readers' rescaling paths.
    case int12
}

/// Writes a `SimulatedScan` as a BIDS dataset (raw MEGRE + `derivatives/qsmbench` ground truth).
///
/// Layout (shared/CLI.md): `DIR/sub-<name>/anat/sub-<name>_echo-<n>_part-{mag,phase}_MEGRE.nii.gz`
/// with JSON sidecars, `DIR/dataset_description.json`, and in `DIR/derivatives/qsmbench/sub-<name>/anat/`
/// `_Chimap`, `_mask`, `_dseg` (+ `_dseg.tsv`), `_fieldmap` (total), `_desc-local_fieldmap`,
/// `_desc-local_Chimap` (the χ making the local field), `_desc-background_fieldmap`, `_M0map`, `_R2starmap`, each with a sidecar recording units and
/// conventions. Files are first written to a hidden directory beside DIR and moved into place at the
/// end, so a failure leaves nothing behind.
public enum SimulationDataset {
    /// Writes `scan` under `directory` (`softwareVersion` goes to `GeneratedBy`); returns the paths
    /// written, relative to `directory`, sorted.
    @discardableResult
    public static func write(_ scan: SimulatedScan, to directory: String, phaseScaling: PhaseScaling = .radians,
                             subject: String? = nil, softwareVersion: String = "unknown") throws(QSMError) -> [String] {
        let label = subject ?? scan.name
        guard !label.isEmpty, label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw .invalidOption("--subject", "'\(label)' is not a BIDS label (letters and digits only)")
        }
        let manager = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: target.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw .invalidOption("--out", "\(directory) exists and is not a directory")
        }
        let staging = target.deletingLastPathComponent()
            .appendingPathComponent(".\(target.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        try? manager.removeItem(at: staging)
        var written: [String] = []
        do {
            written = try writeFiles(scan, into: staging.path, subject: label, phaseScaling: phaseScaling,
                                     version: softwareVersion)
            try moveContents(of: staging, to: target, files: written)
        } catch {
            try? manager.removeItem(at: staging)
            throw error
        }
        try? manager.removeItem(at: staging)
        return written.sorted()
    }

    /// The sidecar keys every file shares: conventions, geometry and provenance.
    public static func commonMetadata(_ scan: SimulatedScan) -> [String: Any] {
        let c = scan.conventions
        return [
            "MagneticFieldStrength": scan.fieldStrength,
            "B0_dir": [scan.b0Direction.x, scan.b0Direction.y, scan.b0Direction.z],
            "VoxelSize": [scan.grid.voxelSize.x, scan.grid.voxelSize.y, scan.grid.voxelSize.z],
            "GyromagneticRatio": c.gyromagneticRatio,
            "GyromagneticRatioUnits": "MHz/T",
            "DipoleKernelDC": c.dipoleDC.rawValue,
            "DipoleKernel": "D(k) = 1/3 - (k.b)^2/|k|^2 on physical k, B0_dir in voxel axes",
            "PhaseSign": c.phaseSign > 0 ? "+1" : "-1",
            "PhaseModel": "phase = PhaseSign * 2*pi * GyromagneticRatio[MHz/T] * MagneticFieldStrength[T] * EchoTime[s] * field[ppm] + phase offset",
            "FieldUnits": c.fieldUnit,
            "ForwardModel": [
                "PaddingFactor": [scan.forward.paddingFactor.x, scan.forward.paddingFactor.y, scan.forward.paddingFactor.z],
                "PaddingValue": "value of chi at the first corner voxel",
                "Precision": scan.forward.precision.rawValue,
            ] as [String: Any],
            "Phantom": scan.name,
            "PhaseOffset": scan.acquisition.phaseOffset,
            "ShimField": scan.acquisition.shim,
            "BackgroundField": scan.acquisition.background,
            "PeakSNR": scan.acquisition.snr.isFinite ? scan.acquisition.snr as Any : "inf",
            "SNRDefinition": "sigma per real/imaginary channel = max|signal of the echo| / PeakSNR",
            "RandomSeed": scan.acquisition.seed,
            "ConversionSoftware": "qsmbench",
            "GeneratedBy": "qsmbench simulate",
        ]
    }

    // MARK: - Implementation details

    private static func writeFiles(_ scan: SimulatedScan, into root: String, subject: String,
                                   phaseScaling: PhaseScaling, version: String) throws(QSMError) -> [String] {
        var written: [String] = []
        func put(_ relative: String, _ body: (String) throws(QSMError) -> Void) throws(QSMError) {
            let path = (root as NSString).appendingPathComponent(relative)
            do {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
            } catch {
                throw .invalidOption("--out", "cannot create \((path as NSString).deletingLastPathComponent)")
            }
            try body(path)
            written.append(relative)
        }
        func json(_ relative: String, _ object: [String: Any]) throws(QSMError) {
            try put(relative) { path throws(QSMError) in
                let data: Data
                do { data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) } catch {
                    throw .invalidParameter(relative, "cannot encode the sidecar as JSON")
                }
                try AtomicFile.write(data + Data("\n".utf8), to: path)
            }
        }
        let common = commonMetadata(scan)
        try json("dataset_description.json", [
            "Name": "qsmbench simulated \(scan.name) phantom", "BIDSVersion": "1.9.0", "DatasetType": "raw",
            "GeneratedBy": [["Name": "qsmbench", "Version": version, "Description": "qsmbench simulate"]],
        ])
        let anat = "sub-\(subject)/anat/sub-\(subject)"
        let n = scan.grid.count
        for (index, te) in scan.echoTimes.enumerated() {
            let echo = index + 1
            var magnitude = Volume<Float>(zeros: scan.grid)
            var phase = Volume<Float>(zeros: scan.grid)
            magnitude.voxels = Array(scan.magnitude.voxels[index * n..<(index + 1) * n])
            phase.voxels = Array(scan.phase.voxels[index * n..<(index + 1) * n])
            var echoMetadata = common
            echoMetadata["EchoTime"] = te
            echoMetadata["EchoNumber"] = echo
            echoMetadata["NoiseSigma"] = scan.noiseSigma[index]
            echoMetadata["ProtocolName"] = "MEGRE"
            var magnitudeMetadata = echoMetadata
            magnitudeMetadata["ImageType"] = ["M", "MAGNITUDE"]
            magnitudeMetadata["Units"] = "arbitrary"
            try put("\(anat)_echo-\(echo)_part-mag_MEGRE.nii.gz") { path throws(QSMError) in
                try NIfTI.write(magnitude, to: path, description: "qsmbench magnitude TE=\(te)")
            }
            try json("\(anat)_echo-\(echo)_part-mag_MEGRE.json", magnitudeMetadata)
            var phaseMetadata = echoMetadata
            phaseMetadata["ImageType"] = ["P", "PHASE"]
            switch phaseScaling {
            case .radians:
                phaseMetadata["Units"] = "rad"
                try put("\(anat)_echo-\(echo)_part-phase_MEGRE.nii.gz") { path throws(QSMError) in
                    try NIfTI.write(phase, to: path, description: "qsmbench phase rad TE=\(te)")
                }
            case .int12:
                phaseMetadata["Units"] = "arbitrary"
                phaseMetadata["PhaseScaling"] = "stored = round((phase + pi) * 4095 / (2*pi)), 0...4095, no header scaling"
                let stored = phase.map { min(4095, max(0, ((Double($0) + .pi) * 4095 / (2 * .pi)).rounded())) }
                try put("\(anat)_echo-\(echo)_part-phase_MEGRE.nii.gz") { path throws(QSMError) in
                    try NIfTI.write(stored, to: path, datatype: .int16, description: "qsmbench phase int12 TE=\(te)")
                }
            }
            try json("\(anat)_echo-\(echo)_part-phase_MEGRE.json", phaseMetadata)
        }

        // Ground truth.
        try json("derivatives/qsmbench/dataset_description.json", [
            "Name": "qsmbench ground truth for the simulated \(scan.name) phantom", "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [["Name": "qsmbench", "Version": version, "Description": "qsmbench simulate"]],
        ])
        let truth = scan.truth
        let derived = "derivatives/qsmbench/\(anat)"
        func map(_ suffix: String, _ volume: Volume<Float>, units: String, description: String) throws(QSMError) {
            try put("\(derived)_\(suffix).nii.gz") { path throws(QSMError) in
                try NIfTI.write(volume, to: path, description: "qsmbench \(suffix)")
            }
            var metadata = common
            metadata["Units"] = units
            metadata["Description"] = description
            try json("\(derived)_\(suffix).json", metadata)
        }
        try map("Chimap", truth.chi, units: "ppm", description: "ground-truth susceptibility")
        try map("fieldmap", truth.totalField, units: "ppm",
                description: "total field encoded in the phase (local + background\(scan.acquisition.shim ? " - second-order shim" : ""))")
        try map("desc-local_fieldmap", truth.localField, units: "ppm", description: "field of the sources inside the mask")
        // The truth for an inversion from the local field: at the mask's rim `Chimap` holds
        // partial-volume bone or air, which makes no part of the local field.
        try map("desc-local_Chimap", truth.localChi, units: "ppm",
                description: "susceptibility of the local field's sources (intracranial part of each mask voxel); truth for inversions from the local field")
        try map("desc-background_fieldmap", truth.backgroundField, units: "ppm",
                description: "total field minus local field")
        try map("M0map", truth.m0, units: "arbitrary", description: "proton density")
        try map("R2starmap", truth.r2star, units: "1/s", description: "R2* at MagneticFieldStrength")
        if scan.acquisition.phaseOffset {
            try map("desc-offset_phasemap", truth.phaseOffset, units: "rad", description: "echo-independent phase offset phi0")
        }
        try put("\(derived)_mask.nii.gz") { path throws(QSMError) in
            try NIfTI.write(truth.mask.map { UInt8($0 ? 1 : 0) }, to: path, datatype: .uint8, description: "qsmbench mask")
        }
        var maskMetadata = common
        maskMetadata["Description"] = "evaluation mask (brain); sources inside make the local field"
        try json("\(derived)_mask.json", maskMetadata)
        try put("\(derived)_dseg.nii.gz") { path throws(QSMError) in
            try NIfTI.write(truth.segmentation, to: path, datatype: .uint8, description: "qsmbench dseg")
        }
        try json("\(derived)_dseg.json", common)
        try put("\(derived)_dseg.tsv") { path throws(QSMError) in
            var text = "index\tname\tchi_ppm\tm0\tr2star_per_s\n"
            for l in truth.labels { text += "\(l.index)\t\(l.name)\t\(l.chi)\t\(l.m0)\t\(l.r2star)\n" }
            try AtomicFile.write(Data(text.utf8), to: path)
        }
        return written
    }

    private static func moveContents(of staging: URL, to target: URL, files: [String]) throws(QSMError) {
        let manager = FileManager.default
        do {
            if !manager.fileExists(atPath: target.path) {
                try manager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try manager.moveItem(at: staging, to: target)
                return
            }
            for relative in files {
                let source = staging.appendingPathComponent(relative), destination = target.appendingPathComponent(relative)
                try manager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                if manager.fileExists(atPath: destination.path) { try manager.removeItem(at: destination) }
                try manager.moveItem(at: source, to: destination)
            }
        } catch {
            throw .invalidOption("--out", "cannot move the finished dataset into \(target.path): \(error.localizedDescription)")
        }
    }
}
