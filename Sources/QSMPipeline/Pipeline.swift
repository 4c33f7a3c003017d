import QSMCore

/// Which method runs at each stage, and the `--set` values applied to them.
public struct PipelineConfiguration: Sendable, Codable, Equatable {
    /// Masking method (used only when no mask is given).
    public var masking = ThresholdMask.name
    /// Unwrapping method.
    /// Unwrapping method. Default region growing: exact (congruent with the wrapped phase), as the
    /// 2024 consensus recommends; Laplacian unwrapping turns phase steps above π between voxels
    /// (near air–tissue boundaries) into field errors no background removal removes
    /// (docs/notes/accuracy-head.md).
    public var unwrapping = RegionGrowingUnwrapping.name
    /// Echo-combination method.
    public var combination = WeightedLinearFit.name
    /// Background-removal method.
    public var backgroundRemoval = VSHARP.name
    /// Dipole-inversion method.
    public var inversion = TKD.name
    /// Referencing method.
    public var referencing = MeanReference.name
    /// `--set stage.parameter=value` assignments, applied to the selected method of each stage.
    public var settings: [ParameterSetting] = []
    /// The default pipeline: threshold → region-growing → linear-fit → vsharp → tkd → mean.
    public init() {}
}

/// What a pipeline run starts from. The first stage is implied: a local field starts at the
/// inversion, a total field at background removal, otherwise the wrapped phase at unwrapping.
public struct PipelineInputs: Sendable {
    /// Wrapped phase, rad, one frame per echo (`context.echoTimes` gives the TEs).
    public var wrappedPhase: Volume<Float>?
    /// Magnitude, one frame per echo: masking and fit weights.
    public var magnitude: Volume<Float>?
    /// A given mask (e.g. from a file); the masking stage is skipped.
    public var mask: Mask?
    /// A given total field, ppm: the run starts at background removal.
    public var totalField: Volume<Float>?
    /// A given local field, ppm: the run is the inversion (and referencing) alone.
    public var localField: Volume<Float>?
    /// Integer labels for label referencing.
    public var segmentation: Volume<Int32>?
    /// Empty inputs; set the fields you have.
    public init(wrappedPhase: Volume<Float>? = nil, magnitude: Volume<Float>? = nil, mask: Mask? = nil,
                totalField: Volume<Float>? = nil, localField: Volume<Float>? = nil,
                segmentation: Volume<Int32>? = nil) {
        self.wrappedPhase = wrappedPhase
        self.magnitude = magnitude
        self.mask = mask
        self.totalField = totalField
        self.localField = localField
        self.segmentation = segmentation
    }
}

/// Time and FFT count of one stage of one run.
public struct StageRecord: Sendable, Codable, Equatable {
    /// The stage.
    public var kind: StageKind
    /// The method that ran (`given` when the output came from the inputs).
    public var method: String
    /// Wall time, ms.
    public var milliseconds: Double
    /// 3-D FFTs executed by the stage (from `FFTStatistics`; exact only when nothing else runs FFTs).
    public var transforms: Int
}

/// Every intermediate output of a run, so errors can be attributed to a stage.
public struct PipelineResult: Sendable {
    /// The mask the field stages used (given or computed).
    public var mask: Mask
    /// Unwrapped phase, rad (nil when the run started later).
    public var unwrappedPhase: Volume<Float>?
    /// Echo-combination output (nil when the run started later).
    public var fieldEstimate: FieldEstimate?
    /// Background-removal output (nil when a local field was given).
    public var localField: LocalField?
    /// χ before referencing, ppm.
    public var unreferencedSusceptibility: Volume<Float>
    /// χ after referencing, ppm: the pipeline's answer.
    public var susceptibility: Volume<Float>
    /// One record per stage that ran, in order.
    public var records: [StageRecord]
}

/// A chain of one configured method per stage; runs from whatever the inputs provide.
public struct Pipeline: Sendable {
    /// Masking method.
    public var masking: any MaskingMethod
    /// Unwrapping method.
    public var unwrapping: any PhaseUnwrapping
    /// Echo-combination method.
    public var combination: any EchoCombination
    /// Background-removal method.
    public var backgroundRemoval: any BackgroundRemoval
    /// Dipole-inversion method.
    public var inversion: any DipoleInversion
    /// Referencing method.
    public var referencing: any Referencing

    /// Builds the methods named in `configuration`; throws for unknown names, unknown or invalid parameters.
    public init(_ configuration: PipelineConfiguration = .init()) throws(QSMError) {
        let s = configuration.settings
        masking = try MethodRegistry.masking(configuration.masking, settings: s)
        unwrapping = try MethodRegistry.unwrapping(configuration.unwrapping, settings: s)
        combination = try MethodRegistry.combination(configuration.combination, settings: s)
        backgroundRemoval = try MethodRegistry.backgroundRemoval(configuration.backgroundRemoval, settings: s)
        inversion = try MethodRegistry.inversion(configuration.inversion, settings: s)
        referencing = try MethodRegistry.referencing(configuration.referencing, settings: s)
    }

    /// Runs every stage from the first one the inputs allow to referencing.
    public func run(_ inputs: PipelineInputs, context: StageContext) throws(QSMError) -> PipelineResult {
        var records: [StageRecord] = []
        func timed<R>(_ kind: StageKind, _ method: String, _ body: () throws(QSMError) -> R) throws(QSMError) -> R {
            let t0 = now(), f0 = FFTStatistics.executedTransforms
            let r = try body()
            records.append(StageRecord(kind: kind, method: method, milliseconds: now() - t0,
                                       transforms: FFTStatistics.executedTransforms - f0))
            return r
        }
        func nameOf<M: Stage>(_ m: M) -> String { M.name }

        let mask: Mask
        if let given = inputs.mask {
            mask = given
        } else {
            guard let magnitude = inputs.magnitude else {
                throw .invalidOption("--mask", "no mask given and no magnitude to compute one from")
            }
            mask = try timed(.masking, nameOf(masking)) { () throws(QSMError) in try masking.apply(magnitude: magnitude, context: context) }
        }

        var unwrapped: Volume<Float>?, estimate: FieldEstimate?, local: LocalField?
        let localField: Volume<Float>, localMask: Mask
        if let given = inputs.localField {
            localField = given
            localMask = mask
        } else {
            let totalField: Volume<Float>
            if let given = inputs.totalField {
                totalField = given
            } else {
                guard let phase = inputs.wrappedPhase else {
                    throw .invalidOption("--field", "no phase, total field or local field to start from")
                }
                let u = try timed(.unwrapping, nameOf(unwrapping)) { () throws(QSMError) in
                    try unwrapping.apply(wrappedPhase: phase, magnitude: inputs.magnitude, mask: mask, context: context)
                }
                let e = try timed(.combination, nameOf(combination)) { () throws(QSMError) in
                    try combination.apply(unwrappedPhase: u, magnitude: inputs.magnitude, mask: mask, context: context)
                }
                unwrapped = u
                estimate = e
                totalField = e.totalField
            }
            let l = try timed(.backgroundRemoval, nameOf(backgroundRemoval)) { () throws(QSMError) in
                try backgroundRemoval.apply(totalField: totalField, mask: mask, context: context)
            }
            local = l
            localField = l.field
            localMask = l.mask
        }
        let chi = try timed(.inversion, nameOf(inversion)) { () throws(QSMError) in
            // The closed-form divisions have no use for magnitude or noise: skip the magnitude pass.
            let support = inversion is TKD || inversion is TSVD ? InversionSupport()
                : InversionSupport(magnitude: inputs.magnitude.map(rootSumOfSquares), noise: estimate?.noise,
                                   echoMagnitude: inputs.magnitude)
            return try inversion.apply(localField: localField, mask: localMask, context: context, support: support)
        }
        let referenced = try timed(.referencing, nameOf(referencing)) { () throws(QSMError) in
            try referencing.apply(susceptibility: chi, mask: localMask, segmentation: inputs.segmentation, context: context)
        }
        return PipelineResult(mask: mask, unwrappedPhase: unwrapped, fieldEstimate: estimate, localField: local,
                              unreferencedSusceptibility: chi, susceptibility: referenced, records: records)
    }
}

/// √(Σ frames²) voxel-wise: one magnitude image from all echoes.
func rootSumOfSquares(_ magnitude: Volume<Float>) -> Volume<Float> {
    guard magnitude.frames > 1 else { return magnitude }
    let n = magnitude.grid.count, frames = magnitude.frames
    let voxels = magnitude.withVoxels { m in
        let mp = ReadPointer(m.baseAddress!)
        return VoxelLoop.generate(count: n) { i in
            var sum: Float = 0
            for f in 0..<frames { let v = mp[f * n + i]; sum += v * v }
            return sum.squareRoot()
        }
    }
    return try! Volume(grid: magnitude.grid, voxels: voxels)
}
