import Foundation
import QSMCore
import QSMIO

/// Named method combinations for `qsmbench run --pipeline`.
public enum PipelinePreset: String, Sendable, CaseIterable {
    /// The registry default: threshold → region-growing → linear-fit → vsharp → tkd → mean.
    case `default`
    /// One SMV radius instead of V-SHARP's 18…2 mm sweep: threshold → laplacian → linear-fit → sharp → tkd → mean.
    case fast

    /// The methods of the preset (no `--set` values).
    public var configuration: PipelineConfiguration {
        var c = PipelineConfiguration()
        if self == .fast {
            c.unwrapping = LaplacianUnwrapping.name
            c.backgroundRemoval = SHARP.name
        }
        return c
    }

    /// Parses a preset name; an unknown one is an `--pipeline` error listing the presets.
    public init(named name: String) throws(QSMError) {
        guard let preset = PipelinePreset(rawValue: name) else {
            throw .invalidOption("--pipeline", "'\(name)' is not a preset; use one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = preset
    }
}

/// What `qsmbench run` needs besides the data: methods, overrides and which outputs to keep.
public struct ReconstructionOptions: Sendable {
    /// Methods and `--set` values.
    public var configuration = PipelineConfiguration()
    /// A mask file to use instead of the masking stage.
    public var maskPath: String?
    /// B0 in tesla, overriding the sidecars' `MagneticFieldStrength`.
    public var fieldStrength: Double?
    /// B0 direction in world (scanner) coordinates; converted to voxel axes through each input's affine.
    public var worldB0Direction = SIMD3<Double>(0, 0, 1)
    /// Also write the mask, total field and local field (and the local field's valid mask).
    public var keepIntermediates = false
    /// Recorded in the derivatives' `GeneratedBy`.
    public var softwareVersion = "unknown"
    /// Defaults: registry pipeline, mask computed, B0 from the sidecars, along world z.
    public init() {}
}

/// The result of one reconstructed series or field file.
public struct ReconstructionOutcome: Sendable {
    /// `sub-01_ses-1` or the input file's stem.
    public var name: String
    /// Files written, absolute or relative to the working directory as given.
    public var files: [String]
    /// The one-line summary `qsmbench run` prints.
    public var summary: String
    /// The pipeline result (χ, mask, intermediates, stage records).
    public var result: PipelineResult
    /// Phase scaling detected (nil when starting from a field).
    public var phaseScaling: PhaseScalingDetection?
    /// B0 direction used, in voxel axes.
    public var b0Direction: SIMD3<Double>
}

/// The series → `PipelineInputs` → derivatives flow of `qsmbench run`.
///
/// Every input is read and checked and the whole pipeline runs before anything is written; the
/// output files are then written atomically one by one, and if one fails the others of the same
/// series are removed, so an error never leaves a partial series behind.
public enum SeriesReconstruction {
    /// Reconstructs one discovered BIDS series into `derivatives/sub-*/[ses-*/]anat/<base>_Chimap.nii.gz`.
    public static func reconstruct(_ series: MEGRESeries, options: ReconstructionOptions,
                                   derivatives: String) throws(QSMError) -> ReconstructionOutcome {
        let start = now()
        let pipeline = try Pipeline(options.configuration)
        let data = try BIDSDataset.read(series)
        let phasePath = series.echoes[0].phasePath!, magnitudePath = series.echoes[0].magnitudePath!
        guard let fieldStrength = options.fieldStrength ?? data.fieldStrength else {
            throw .invalidFile(MEGREEcho.sidecarPath(of: phasePath), "has no MagneticFieldStrength; give --b0")
        }
        let grid = data.phase.grid
        let context = StageContext(b0Direction: grid.b0Direction(world: options.worldB0Direction),
                                   fieldStrength: fieldStrength, echoTimes: data.echoTimes)
        try context.validate()
        var inputs = PipelineInputs(wrappedPhase: data.phase, magnitude: data.magnitude)
        if let maskPath = options.maskPath {
            inputs.mask = try readMask(maskPath, grid: grid, gridSource: phasePath)
        } else {
            let mask = try pipeline.masking.apply(magnitude: data.magnitude, context: context)
            guard mask.voxels.contains(true) else {
                throw .invalidFile(magnitudePath, "the \(options.configuration.masking) mask of the magnitude is empty; give --mask")
            }
            inputs.mask = mask
        }
        let result = try pipeline.run(inputs, context: context)
        try requireFinite(result.susceptibility, source: phasePath)

        let folder = (derivatives as NSString).appendingPathComponent(series.key.anatomicalFolder)
        let base = (folder as NSString).appendingPathComponent(series.key.baseName)
        var metadata = provenance(options, context: context)
        metadata["Sources"] = series.echoes.flatMap { [$0.magnitudePath!, $0.phasePath!] }
        metadata["EchoTime"] = data.echoTimes
        metadata["PhaseScaling"] = data.phaseScaling.rawValue
        metadata["StoredPhaseRange"] = [data.storedPhaseRange.lowerBound, data.storedPhaseRange.upperBound]
        let files = try writeOutputs(result, base: base, metadata: metadata, keepIntermediates: options.keepIntermediates)
        let seconds = now() - start
        let summary = "\(series.key.baseName): \(data.echoTimes.count) echoes \(grid.shapeText), phase \(data.phaseScaling.rawValue)"
            + " [\(format(data.storedPhaseRange.lowerBound))…\(format(data.storedPhaseRange.upperBound))],"
            + " B0 \(format(fieldStrength)) T along \(vectorText(context.b0Direction)) (voxel axes), "
            + describe(result, options) + ", \(format(seconds / 1000)) s → \(files[0])"
        return ReconstructionOutcome(name: series.key.baseName, files: files, summary: summary, result: result,
                                     phaseScaling: data.phaseScaling, b0Direction: context.b0Direction)
    }

    /// Runs from a total field (background removal onwards) or a local field (inversion alone), both
    /// in ppm, with a mask; writes `outputDirectory/<input stem>_Chimap.nii.gz`.
    public static func reconstruct(totalField: String?, localField: String?, maskPath: String?, options: ReconstructionOptions,
                                   outputDirectory: String) throws(QSMError) -> ReconstructionOutcome {
        let start = now()
        guard (totalField == nil) != (localField == nil) else {
            throw .invalidOption(totalField == nil ? "--field" : "--local-field",
                                 "give a BIDS directory, or exactly one of --field and --local-field")
        }
        guard let maskPath else { throw .invalidOption("--mask", "required with --field or --local-field") }
        let pipeline = try Pipeline(options.configuration)
        let path = totalField ?? localField!
        let field = try NIfTI.readVolume(path)
        guard field.frames == 1 else { throw .invalidFile(path, "has \(field.frames) volumes; one 3-D field map (ppm) is expected") }
        if let bad = field.voxels.firstIndex(where: { !$0.isFinite }) {
            throw .invalidFile(path, "holds a non-finite value (\(field.voxels[bad])) at voxel \(bad)")
        }
        let mask = try readMask(maskPath, grid: field.grid, gridSource: path)
        // Fields in ppm need no field strength; 3 T only satisfies the context's check unless given.
        let context = StageContext(b0Direction: field.grid.b0Direction(world: options.worldB0Direction),
                                   fieldStrength: options.fieldStrength ?? 3)
        try context.validate()
        let inputs = totalField != nil ? PipelineInputs(mask: mask, totalField: field) : PipelineInputs(mask: mask, localField: field)
        let result = try pipeline.run(inputs, context: context)
        try requireFinite(result.susceptibility, source: path)
        let stem = fileStem(path)
        var metadata = provenance(options, context: context)
        metadata["Sources"] = [path, maskPath]
        let files = try writeOutputs(result, base: (outputDirectory as NSString).appendingPathComponent(stem),
                                     metadata: metadata, keepIntermediates: options.keepIntermediates)
        let summary = "\(stem): \(totalField != nil ? "total" : "local") field \(field.grid.shapeText),"
            + " B0 along \(vectorText(context.b0Direction)) (voxel axes), \(describe(result, options)),"
            + " \(format((now() - start) / 1000)) s → \(files[0])"
        return ReconstructionOutcome(name: stem, files: files, summary: summary, result: result, phaseScaling: nil,
                                     b0Direction: context.b0Direction)
    }

    /// Writes `derivatives/dataset_description.json` (BIDS derivative, GeneratedBy qsmbench with the pipeline).
    public static func writeDatasetDescription(derivatives: String, options: ReconstructionOptions) throws(QSMError) {
        let c = options.configuration
        let object: [String: Any] = [
            "Name": "qsmbench QSM reconstruction", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
            "GeneratedBy": [["Name": "qsmbench", "Version": options.softwareVersion,
                             "Description": "qsmbench run: \(methodChain(c))"]],
        ]
        try createDirectory(derivatives)
        try writeJSON(object, to: (derivatives as NSString).appendingPathComponent("dataset_description.json"))
    }

    /// `report.nii.gz` → `report`; `a.b.nii` → `a.b`.
    public static func fileStem(_ path: String) -> String {
        let name = (path as NSString).lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.hasSuffix(ext) { return String(name.dropLast(ext.count)) }
        return name
    }

    // MARK: - Implementation details

    private static func readMask(_ path: String, grid: Grid, gridSource: String) throws(QSMError) -> Mask {
        let volume = try NIfTI.readVolume(path)
        guard volume.frames == 1 else { throw .invalidFile(path, "has \(volume.frames) volumes; a 3-D mask is expected") }
        guard volume.grid.shape == grid.shape else {
            throw .mismatch(path, "shape \(volume.grid.shapeText) differs from \((gridSource as NSString).lastPathComponent) (\(grid.shapeText))")
        }
        let worst = zip(volume.grid.affine.entries, grid.affine.entries).map { abs($0 - $1) }.max() ?? 0
        guard worst <= 1e-4 else {
            throw .mismatch(path, "affine differs from \((gridSource as NSString).lastPathComponent) by up to \(worst) mm")
        }
        var mask = Mask(grid: grid, repeating: false)
        for i in 0..<grid.count { mask.voxels[i] = volume.voxels[i].isFinite && volume.voxels[i] != 0 }
        guard mask.voxels.contains(true) else { throw .invalidFile(path, "the mask is empty (no non-zero voxel)") }
        return mask
    }

    private static func requireFinite(_ chi: Volume<Float>, source: String) throws(QSMError) {
        guard chi.voxels.allSatisfy(\.isFinite) else {
            throw .checkFailed(source, "the reconstruction produced non-finite χ values; nothing was written")
        }
    }

    private static func methodChain(_ c: PipelineConfiguration) -> String {
        var text = [c.masking, c.unwrapping, c.combination, c.backgroundRemoval, c.inversion, c.referencing].joined(separator: " → ")
        if !c.settings.isEmpty { text += " with " + c.settings.map(\.description).joined(separator: " ") }
        return text
    }

    private static func describe(_ result: PipelineResult, _ options: ReconstructionOptions) -> String {
        let methods = result.records.map(\.method).joined(separator: "→")
        let chi = result.susceptibility, mask = result.localField?.mask ?? result.mask
        var sum = 0.0, low = Double.infinity, high = -Double.infinity, count = 0
        for i in 0..<mask.voxels.count where mask.voxels[i] {
            let v = Double(chi.voxels[i]); sum += v; low = min(low, v); high = max(high, v); count += 1
        }
        let settings = options.configuration.settings.isEmpty ? "" : " (" + options.configuration.settings.map(\.description).joined(separator: " ") + ")"
        return "\(methods)\(settings), χ in mask [\(format(low, 3))…\(format(high, 3))] ppm over \(count) voxels"
    }

    private static func provenance(_ options: ReconstructionOptions, context: StageContext) -> [String: Any] {
        let c = options.configuration
        return [
            "Units": "ppm",
            "Description": "susceptibility from qsmbench run",
            "Pipeline": ["mask": options.maskPath ?? c.masking, "unwrap": c.unwrapping, "combine": c.combination,
                         "bgremove": c.backgroundRemoval, "inversion": c.inversion, "reference": c.referencing],
            "Settings": c.settings.map(\.description),
            "MagneticFieldStrength": context.fieldStrength,
            "B0DirectionVoxelAxes": [context.b0Direction.x, context.b0Direction.y, context.b0Direction.z],
            "GyromagneticRatio": context.conventions.gyromagneticRatio,
            "DipoleKernelDC": context.conventions.dipoleDC.rawValue,
            "GeneratedBy": "qsmbench \(options.softwareVersion)",
        ]
    }

    /// Writes χ (+ sidecar) and, when asked, the intermediates; on any failure removes what it wrote.
    private static func writeOutputs(_ result: PipelineResult, base: String, metadata: [String: Any],
                                     keepIntermediates: Bool) throws(QSMError) -> [String] {
        var written: [String] = []
        let folder = (base as NSString).deletingLastPathComponent
        var created: [String] = []  // folders this call creates, deepest first
        var probe = folder
        while !probe.isEmpty, probe != "/", !FileManager.default.fileExists(atPath: probe) {
            created.append(probe)
            probe = (probe as NSString).deletingLastPathComponent
        }
        do throws(QSMError) {
            try createDirectory(folder)
            func volume(_ suffix: String, _ v: Volume<Float>, _ description: String) throws(QSMError) {
                let path = "\(base)_\(suffix).nii.gz"
                try NIfTI.write(v, to: path, description: "qsmbench \(suffix)")
                written.append(path)
                var m = metadata
                m["Description"] = description
                try writeJSON(m, to: "\(base)_\(suffix).json")
                written.append("\(base)_\(suffix).json")
            }
            func mask(_ suffix: String, _ m: Mask) throws(QSMError) {
                let path = "\(base)_\(suffix).nii.gz"
                try NIfTI.write(m.map { UInt8($0 ? 1 : 0) }, to: path, datatype: .uint8, description: "qsmbench \(suffix)")
                written.append(path)
            }
            try volume("Chimap", result.susceptibility, "susceptibility, ppm, referenced")
            if keepIntermediates {
                try mask("mask", result.mask)
                if let total = result.fieldEstimate?.totalField {
                    try volume("fieldmap", total, "total field from echo combination, ppm")
                }
                if let local = result.localField {
                    try volume("desc-local_fieldmap", local.field, "local field after background removal, ppm")
                    try mask("desc-local_mask", local.mask)
                }
            }
        } catch {
            for path in written { try? FileManager.default.removeItem(atPath: path) }
            for path in created {
                guard let contents = try? FileManager.default.contentsOfDirectory(atPath: path), contents.isEmpty else { break }
                try? FileManager.default.removeItem(atPath: path)
            }
            throw error
        }
        return written
    }

    private static func createDirectory(_ path: String) throws(QSMError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .invalidOption("--out", "cannot create \(path)")
        }
    }

    private static func writeJSON(_ object: [String: Any], to path: String) throws(QSMError) {
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) } catch {
            throw .invalidParameter(path, "cannot encode the sidecar as JSON")
        }
        try AtomicFile.write(data + Data("\n".utf8), to: path)
    }

    private static func vectorText(_ v: SIMD3<Double>) -> String { "(\(format(v.x, 3)), \(format(v.y, 3)), \(format(v.z, 3)))" }

    private static func format(_ value: Double, _ digits: Int = 2) -> String {
        guard value.isFinite else { return "\(value)" }
        return String(format: "%.\(digits)f", value)
    }
}
