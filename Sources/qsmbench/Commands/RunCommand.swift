import ArgumentParser
import Foundation
import QSMIO
import QSMPipeline
import QSMBenchmark
import QSMCore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Reconstruct χ from BIDS multi-echo GRE data, or from a total or local field map.",
        discussion: """
            With BIDS_DIR: every sub-*/[ses-*/]anat/*_echo-<n>_part-{mag,phase}_MEGRE.nii[.gz] series \
            (with JSON sidecars giving EchoTime in s and MagneticFieldStrength in T) is reconstructed \
            into DIR/sub-*/[ses-*/]anat/<series>_Chimap.nii.gz (ppm) plus DIR/dataset_description.json; \
            derivatives/ is skipped. Phase scaling is detected and reported: Units rad or values within \
            ±(π+0.1) are radians, integers 0…4095 map to [−π, π], −4096…4095 map by π/4096, any other \
            range by min–max. B0 lies along world z (or --b0-direction) and is converted to voxel axes \
            through the phase image's affine, so oblique acquisitions need nothing else. \
            Without BIDS_DIR: --field F (total field, ppm) starts at background removal, --local-field F \
            (ppm) runs the inversion alone; both need --mask F; output DIR/<input stem>_Chimap.nii.gz. \
            Presets (--pipeline): default = threshold→region-growing→linear-fit→vsharp→tkd→mean; \
            fast = the same with sharp (one 6 mm kernel) instead of vsharp. --unwrap/--combine/--bgremove/\
            --inversion/--mask-method replace one stage; `qsmbench list methods` shows names and parameters. \
            A series with bad input (missing echo or sidecar, no EchoTime, mismatched grids, NaN/Inf, \
            empty mask) gets a one-line error and leaves no files; the run stops there unless --keep-going. \
            --resume skips series whose _Chimap.nii.gz exists. With --executor slurm every series is one task \
            of ONE job array (plan in DIR/slurm/plan.json, logs in DIR/slurm/logs/); `qsmbench status DIR` \
            shows done/failed/pending and --resume submits only the missing or failed series (docs/SLURM.md).
            """)

    @Argument(help: "BIDS dataset root (omit when running from --field or --local-field).") var bidsDirectory: String?
    @Option(help: "Output (derivatives) directory.") var out: String
    @Option(help: "Preset: default or fast.") var pipeline: String = "default"
    @Option(name: .customLong("mask-method"), help: "Masking method.") var maskMethod: String?
    @Option(help: "Unwrapping method.") var unwrap: String?
    @Option(help: "Echo-combination method.") var combine: String?
    @Option(help: "Background-removal method.") var bgremove: String?
    @Option(help: "Dipole-inversion method.") var inversion: String?
    @Option(help: "Referencing method.") var reference: String?
    @Option(name: .customLong("set"), help: "stage.parameter=value (repeatable).") var settings: [String] = []
    @Option(name: .customLong("subject"), help: "Only this subject label (repeatable).") var subjects: [String] = []
    @Flag(name: .customLong("keep-intermediates"), help: "Also write mask, total field and local field.")
    var keepIntermediates = false
    @Flag(name: .customLong("keep-going"), help: "Continue with the other series after a failed one.")
    var keepGoing = false
    @Option(help: "Mask (NIfTI; non-zero = inside) instead of the masking stage.") var mask: String?
    @Option(help: "Total field map (NIfTI, ppm): start at background removal.") var field: String?
    @Option(name: .customLong("local-field"), help: "Local field map (NIfTI, ppm): run the inversion alone.")
    var localField: String?
    @Option(help: "Field strength B0 in tesla (overrides MagneticFieldStrength).") var b0: Double?
    @Option(name: .customLong("b0-direction"), help: "B0 direction X,Y,Z in world coordinates (default 0,0,1).")
    var b0Direction: String?
    @Flag(help: "Skip series whose χ map already exists in the output folder.") var resume = false
    @OptionGroup var execution: ExecutorOptions

    func run() throws {
        let options = try makeOptions()
        if try execution.kind() == .slurm { return try submit(options: options) }
        guard let bidsDirectory else {
            let outcome = try SeriesReconstruction.reconstruct(totalField: field, localField: localField, maskPath: mask,
                                                               options: options, outputDirectory: out)
            print(outcome.summary)
            return
        }
        if field != nil { throw QSMError.invalidOption("--field", "not used with a BIDS directory") }
        if localField != nil { throw QSMError.invalidOption("--local-field", "not used with a BIDS directory") }
        var series = try BIDSDataset.discover(bidsDirectory, subjects: subjects)
        if resume {
            let finished = series.filter { FileManager.default.fileExists(atPath: "\(out)/\(Self.chiMapPath($0))") }
            if !finished.isEmpty { print("run: \(finished.count) of \(series.count) series already reconstructed; skipped") }
            series.removeAll { FileManager.default.fileExists(atPath: "\(out)/\(Self.chiMapPath($0))") }
        }
        var failures = 0, successes = 0
        var firstError: QSMError?
        for s in series {
            switch reconstruct(s, options: options, first: successes == 0) {
            case .success(let summary):
                successes += 1
                print(summary)
            case .failure(let error):
                failures += 1
                guard keepGoing else { throw error }
                writeStandardError("error: \(error)\n")
                if firstError == nil { firstError = error }
            }
        }
        if let firstError {
            print("run: \(successes) of \(series.count) series reconstructed, \(failures) failed")
            QSMBenchCommand.fail("\(failures) of \(series.count) series failed (first: \(firstError))", code: firstError.exitCode)
        }
    }

    /// One series; the derivatives' dataset_description.json is written with the first success.
    private func reconstruct(_ series: MEGRESeries, options: ReconstructionOptions, first: Bool) -> Result<String, QSMError> {
        do {
            let outcome = try SeriesReconstruction.reconstruct(series, options: options, derivatives: out)
            if first { try SeriesReconstruction.writeDatasetDescription(derivatives: out, options: options) }
            return .success(outcome.summary)
        } catch {
            return .failure(error)
        }
    }

    /// The χ map of `series` relative to the output folder (its presence means the series is done:
    /// a series' files are written together or not at all).
    static func chiMapPath(_ series: MEGRESeries) -> String {
        "\(series.key.anatomicalFolder)/\(series.key.baseName)_Chimap.nii.gz"
    }

    func makeOptions() throws(QSMError) -> ReconstructionOptions {
        var options = ReconstructionOptions()
        var configuration = try PipelinePreset(named: pipeline).configuration
        if let maskMethod { configuration.masking = maskMethod }
        if let unwrap { configuration.unwrapping = unwrap }
        if let combine { configuration.combination = combine }
        if let bgremove { configuration.backgroundRemoval = bgremove }
        if let inversion { configuration.inversion = inversion }
        if let reference { configuration.referencing = reference }
        configuration.settings = try settings.map { text throws(QSMError) in try ParameterSetting(parsing: text) }
        _ = try Pipeline(configuration)  // unknown methods and parameters fail before any file is read
        options.configuration = configuration
        options.maskPath = mask
        options.keepIntermediates = keepIntermediates
        options.softwareVersion = QSMBenchVersion.string
        if let b0 {
            guard b0.isFinite, b0 > 0 else { throw .invalidOption("--b0", "\(b0) T is not a positive field strength") }
            options.fieldStrength = b0
        }
        if let text = b0Direction {
            let v = try parseTriple(text, option: "--b0-direction", positive: false)
            guard (v * v).sum() > 0 else { throw .invalidOption("--b0-direction", "'\(text)' is the zero vector") }
            options.worldB0Direction = v
        }
        return options
    }
}

extension RunCommand {
    /// `--executor slurm`: one array task per series (those without a χ map with --resume).
    func submit(options: ReconstructionOptions) throws {
        let slurmOptions = try execution.slurmOptions()
        guard let bidsDirectory else {
            throw QSMError.invalidOption("--executor", "slurm runs BIDS series; give BIDS_DIR (--field/--local-field run locally)")
        }
        if keepGoing { throw QSMError.invalidOption("--keep-going", "not used with --executor slurm (every series is its own task)") }
        let series = try BIDSDataset.discover(bidsDirectory, subjects: subjects)
        guard !series.isEmpty else { throw QSMError.invalidFile(bidsDirectory, "no MEGRE series found") }
        let slurm = SlurmExecutor(options: slurmOptions, executable: SlurmExecutor.currentExecutable(), directory: out)
        var plan = SlurmPlan(kind: .run, toolVersion: QSMBenchVersion.string,
                             entries: series.map { SlurmPlan.Entry(identifier: $0.key.baseName, key: Self.chiMapPath($0)) })
        plan.arguments = taskArguments(bidsDirectory: SlurmExecutor.absolute(bidsDirectory), out: slurm.directory)
        let indices = plan.entries.indices.filter { !resume || !plan.isDone(plan.entries[$0], directory: slurm.directory) }
        if !execution.dryRun {
            print("run: \(series.count) series, \(series.count - indices.count) already reconstructed, \(indices.count) to submit")
        }
        if indices.isEmpty { return }
        let work = SlurmExecutor.Work(plan: plan, indices: indices, taskCommand: "run-task", collectCommand: nil,
                                      memoryMegabytes: taskMemoryMegabytes(volumesMiB: try Self.seriesMemoryMiB(series)),
                                      jobName: "qsmbench-run")
        let outcome = try slurm.submit(work, dryRun: execution.dryRun)
        if let status = try execution.report(outcome, executor: slurm, noun: "series"), status.count(.failed) > 0 {
            throw QSMError.checkFailed(out, "\(status.count(.failed)) series failed; resubmit them with --resume")
        }
    }

    /// The arguments each task parses again: the pipeline options with absolute paths, no executor options.
    func taskArguments(bidsDirectory: String, out: String) -> [String] {
        var arguments = [bidsDirectory, "--out", out, "--pipeline", pipeline]
        let methods: [(String, String?)] = [("--mask-method", maskMethod), ("--unwrap", unwrap), ("--combine", combine),
                                            ("--bgremove", bgremove), ("--inversion", inversion), ("--reference", reference),
                                            ("--mask", mask.map(SlurmExecutor.absolute)), ("--b0", b0.map { "\($0)" }),
                                            ("--b0-direction", b0Direction)]
        for case let (option, value?) in methods { arguments += [option, value] }
        for setting in settings { arguments += ["--set", setting] }
        for subject in subjects { arguments += ["--subject", subject] }
        if keepIntermediates { arguments.append("--keep-intermediates") }
        return arguments
    }

    /// Reconstructs the one discovered series named `baseName` (a Slurm task); returns its summary line.
    func reconstructSeries(named baseName: String) throws(QSMError) -> String {
        let options = try makeOptions()
        guard let bidsDirectory else { throw .invalidOption("BIDS_DIR", "missing") }
        let all = try BIDSDataset.discover(bidsDirectory, subjects: subjects)
        guard let series = all.first(where: { $0.key.baseName == baseName }) else {
            throw .invalidFile(bidsDirectory, "series \(baseName) is no longer in the dataset")
        }
        let outcome = try SeriesReconstruction.reconstruct(series, options: options, derivatives: out)
        // Every task writes the same description (atomically): whichever finishes first makes it exist.
        try SeriesReconstruction.writeDatasetDescription(derivatives: out, options: options)
        return outcome.summary
    }

    /// Working-volume estimate of the largest series, MiB: the echoes' phase and magnitude and about
    /// 40 single-frame working volumes of the padded pipeline, Float32 (as the bench plan's estimate).
    static func seriesMemoryMiB(_ series: [MEGRESeries]) throws(QSMError) -> Double {
        var largest = 0.0
        for s in series {
            guard let path = s.echoes.first?.phasePath else { continue }
            let header = try NIfTI.readHeader(path)
            let voxels = Double(header.dim[1...3].reduce(1) { $0 * max(1, $1) })
            largest = max(largest, voxels * 4 * (2 * Double(s.echoes.count) + 40) / 1_048_576)
        }
        return largest
    }
}
