import Foundation
import QSMIO
import QSMMetrics
import QSMPhantom
import QSMPipeline

/// Simulates, reconstructs and scores runs. Simulated scans are shared by every run with the same
/// phantom, protocol and seed (the runner orders runs so each scan is made once).
public struct RunExecutor: Sendable {
    /// Metric convention.
    public var convention: MetricConvention
    /// Whether each stage is also run on ideal inputs.
    public var attribution: Bool
    /// qsmbench version recorded in results and keys.
    public var toolVersion: String

    /// An executor.
    public init(convention: MetricConvention, attribution: Bool, toolVersion: String) {
        self.convention = convention
        self.attribution = attribution
        self.toolVersion = toolVersion
    }

    /// What identifies a simulated scan.
    public struct ScanKey: Hashable, Codable, Sendable {
        var phantom: PhantomSpec
        var acquisition: ProtocolSpec
        var seed: UInt64
        var version: String
        /// `Simulator.modelRevision`: scans cached under an older simulated physics are not reused.
        var model = Simulator.modelRevision
    }

    /// The scan key of a run.
    public func scanKey(_ run: RunSpec) -> ScanKey {
        // The sweep label does not change the data; leave it out so equal protocols share scans.
        var acquisition = run.acquisition
        acquisition.name = ""
        acquisition.sweep = nil
        return ScanKey(phantom: run.phantom, acquisition: acquisition, seed: run.seed, version: toolVersion)
    }

    /// The content key of a run: its identifier, scan, pipeline, convention, attribution and tool
    /// version. The identifier is part of it because two sweep points can describe the same
    /// acquisition (e.g. 3 echoes of an echo-count sweep and one TE set of a spacing sweep): they
    /// share the simulated scan but are separate runs of the suite.
    public func key(_ run: RunSpec) -> String {
        struct Key: Encodable {
            var identifier: String, scan: ScanKey, methods: [String: String], parameters: [String: String]
            var convention: String, attribution: Bool
        }
        return ContentKey.of(Key(identifier: run.identifier, scan: scanKey(run), methods: run.pipeline.methods,
                                 parameters: run.pipeline.parameters, convention: convention.rawValue,
                                 attribution: attribution))
    }

    /// Checks a pipeline's methods and parameters against the registry (before any work starts);
    /// errors name the suite file, the line and the key.
    public static func configuration(_ pipeline: PipelineSpec, file: String = "suite") throws(QSMError) -> PipelineConfiguration {
        func located(_ key: String, _ problem: String) -> QSMError {
            let stage = String(key.prefix { $0 != "." })
            let line = pipeline.lines[key] ?? pipeline.lines[stage] ?? pipeline.line
            let path = pipeline.path.isEmpty ? key : "\(pipeline.path).\(key)"
            return .invalidFile("\(file):\(line)", "\(path): \(problem)")
        }
        var configuration = PipelineConfiguration()
        for (stage, method) in pipeline.methods {
            switch stage {
            case "mask": configuration.masking = method
            case "unwrap": configuration.unwrapping = method
            case "combine": configuration.combination = method
            case "bgremove": configuration.backgroundRemoval = method
            case "inversion": configuration.inversion = method
            case "reference": configuration.referencing = method
            default: throw located(stage, "unknown stage")
            }
        }
        for (key, value) in pipeline.parameters.sorted(by: { $0.key < $1.key }) {
            do {
                configuration.settings.append(try ParameterSetting(parsing: "\(key)=\(value)"))
            } catch {
                throw located(key, error.description)
            }
        }
        do {
            _ = try Pipeline(configuration)
        } catch {
            switch error {
            case let .invalidParameter(key, problem): throw located(key, problem)
            case let .invalidOption(option, problem):
                // Unknown method names come back as the CLI option (--inversion); map to the stage key.
                let stage = ["--mask-method": "mask", "--unwrap": "unwrap", "--combine": "combine",
                             "--bgremove": "bgremove", "--inversion": "inversion", "--reference": "reference"][option]
                throw located(stage ?? option, problem)
            default: throw located("", error.description)
            }
        }
        return configuration
    }

    /// Simulates the scan of `run`.
    public func simulate(_ run: RunSpec) throws(QSMError) -> SimulatedScan {
        let spec = run.phantom
        let grid = Grid(shape: spec.matrix, voxelSize: spec.voxelSize)
        let phantom = try PhantomCatalog.make(spec, grid: grid, fieldStrength: run.acquisition.fieldStrength)
        var acquisition = AcquisitionSettings()
        acquisition.echoTimes = run.acquisition.echoTimes
        acquisition.fieldStrength = run.acquisition.fieldStrength
        acquisition.snr = run.acquisition.snr
        acquisition.seed = run.seed
        acquisition.phaseOffset = run.acquisition.phaseOffset
        if let acquired = run.acquisition.acquiredVoxelSize {
            let shape = SIMD3((0..<3).map { max(1, Int((Double(spec.matrix[$0]) * spec.voxelSize[$0] / acquired[$0]).rounded())) })
            if shape != spec.matrix { acquisition.acquiredShape = shape }
        }
        let b0 = PhantomCatalog.rotate(phantom.b0Direction, byDegrees: run.acquisition.rotationDegrees)
        let forward = ForwardModel(b0Direction: b0, paddingFactor: phantom.paddingFactor)
        return try Simulator(forward: forward, acquisition: acquisition).run(phantom)
    }

    /// The content key of a run's scan as 16 hex digits (the scan cache's file name).
    public func scanKeyText(_ run: RunSpec) -> String { ContentKey.of(scanKey(run)) }

    /// Reconstructs and scores `run` on its simulated `scan`; also returns χ when `keepVolume`.
    public func execute(_ run: RunSpec, scan: SimulatedScan, keepVolume: Bool = false,
                        simulationMilliseconds: Double) throws(QSMError) -> (result: RunResult, chi: Volume<Float>?) {
        try execute(run, scan: BenchScan(scan), keepVolume: keepVolume, simulationMilliseconds: simulationMilliseconds)
    }

    /// Reconstructs and scores `run` on a simulated or cached `scan`; also returns χ when `keepVolume`.
    public func execute(_ run: RunSpec, scan: BenchScan, keepVolume: Bool = false,
                        simulationMilliseconds: Double) throws(QSMError) -> (result: RunResult, chi: Volume<Float>?) {
        let t0 = now()
        let pipeline = try Pipeline(try Self.configuration(run.pipeline))
        let truth = scan
        var algorithm = 0.0
        let context = StageContext(b0Direction: scan.b0Direction, fieldStrength: scan.fieldStrength,
                                   echoTimes: scan.echoTimes, conventions: scan.conventions)
        let segmentation = truth.segmentation.map { Int32($0) }
        let labels = truth.segmentation.map { Int($0) }
        let scorer = Scorer(convention: convention, toolVersion: toolVersion)
        // The phantom's brain mask is given: the benchmark compares reconstructions, not masking,
        // unless the pipeline names a masking method.
        let givenMask: Mask? = run.pipeline.methods["mask"] == nil ? truth.mask : nil
        var stageStart = now()
        let result = try pipeline.run(PipelineInputs(wrappedPhase: scan.phase, magnitude: scan.magnitude,
                                                     mask: givenMask, segmentation: segmentation), context: context)
        algorithm += now() - stageStart
        let scores = try scorer.score(recon: result.susceptibility, truth: truth.localChi, mask: truth.mask,
                                      segmentation: labels)
        var attribution: [String: Scores] = [:]
        if self.attribution {
            stageStart = now()
            let fromLocal = try pipeline.run(PipelineInputs(mask: truth.mask, localField: truth.localField,
                                                            segmentation: segmentation), context: context)
            algorithm += now() - stageStart
            attribution["inversion_from_true_local_field"] =
                try scorer.score(recon: fromLocal.susceptibility, truth: truth.localChi, mask: truth.mask, segmentation: labels)
            stageStart = now()
            let fromTotal = try pipeline.run(PipelineInputs(mask: truth.mask, totalField: truth.totalField,
                                                            segmentation: segmentation), context: context)
            algorithm += now() - stageStart
            attribution["from_true_total_field"] =
                try scorer.score(recon: fromTotal.susceptibility, truth: truth.localChi, mask: truth.mask, segmentation: labels)
        }
        let formatter = ISO8601DateFormatter()
        let record = RunResult(identifier: run.identifier, key: key(run), spec: run, scores: scores, attribution: attribution,
                         stages: result.records, simulationMilliseconds: simulationMilliseconds,
                         wallMilliseconds: simulationMilliseconds + now() - t0, peakMemoryMiB: peakResidentMemoryMiB(),
                         algorithmMilliseconds: algorithm,
                         conventions: scan.conventions, metricConvention: convention.rawValue,
                         toolVersion: toolVersion, finished: formatter.string(from: Date()))
        return (record, keepVolume ? result.susceptibility : nil)
    }
}
