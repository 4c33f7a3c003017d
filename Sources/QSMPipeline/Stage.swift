import QSMCore

/// The six stages of a QSM reconstruction, in pipeline order; `key` is the `--set` prefix.
public enum StageKind: String, Sendable, Codable, CaseIterable, Comparable {
    /// Brain mask from the magnitude.
    case masking = "mask"
    /// Spatial phase unwrapping of each echo.
    case unwrapping = "unwrap"
    /// Echo combination: unwrapped phase vs TE → total field (ppm).
    case combination = "combine"
    /// Background field removal: total field → local field (ppm).
    case backgroundRemoval = "bgremove"
    /// Dipole inversion: local field → χ (ppm).
    case inversion
    /// Referencing: χ minus the mean of a reference region.
    case referencing = "reference"

    /// The stage's key in `--set key.parameter=value` and in configuration files.
    public var key: String { rawValue }

    public static func < (lhs: StageKind, rhs: StageKind) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Acquisition facts every stage may need; the voxel size is not repeated here, it is the input grid's.
public struct StageContext: Sendable, Codable, Equatable {
    /// Unit B0 direction in voxel axes (QSM.md §2.4); (0, 0, 1) for axial data with an identity rotation.
    public var b0Direction: SIMD3<Double>
    /// Main field strength B0, tesla.
    public var fieldStrength: Double
    /// Echo times, seconds, one per phase frame (empty when the pipeline starts after combination).
    public var echoTimes: [Double]
    /// γ̄, D(0) and phase-sign conventions (QSM.md §1.2, §2.2, §1.4).
    public var conventions: Conventions

    /// A context; defaults: B0 along the third voxel axis, 3 T, no echoes, default conventions.
    public init(b0Direction: SIMD3<Double> = SIMD3(0, 0, 1), fieldStrength: Double = 3,
                echoTimes: [Double] = [], conventions: Conventions = .init()) {
        self.b0Direction = b0Direction
        self.fieldStrength = fieldStrength
        self.echoTimes = echoTimes
        self.conventions = conventions
    }

    /// Throws unless B0 direction and field strength are usable (finite, non-zero, positive).
    public func validate() throws(QSMError) {
        let n = (b0Direction * b0Direction).sum()
        guard n.isFinite, n > 0 else { throw .invalidOption("--b0-direction", "\(b0Direction) has no direction") }
        guard fieldStrength.isFinite, fieldStrength > 0 else {
            throw .invalidOption("--b0", "\(fieldStrength) T is not a positive field strength")
        }
    }

    /// Throws unless there is one positive, finite, strictly increasing echo time per phase frame.
    public func validateEchoTimes(frames: Int) throws(QSMError) {
        guard echoTimes.count == frames else {
            throw .mismatch("--te", "\(echoTimes.count) echo times for \(frames) phase echoes")
        }
        for (i, te) in echoTimes.enumerated() {
            guard te.isFinite, te > 0 else { throw .invalidOption("--te", "\(te) is not a positive echo time") }
            guard te < 1 else { throw .invalidOption("--te", "\(te) is not in seconds; did you mean \(te / 1000)?") }
            if i > 0, te <= echoTimes[i - 1] { throw .invalidOption("--te", "echo times must increase (\(echoTimes))") }
        }
    }

    /// ppm per (rad/s) of phase evolution: Δb = ω·1e6/(2π·γ̄·B0)·sign (QSM.md §1.3).
    public var ppmPerRadianPerSecond: Double {
        conventions.phaseSign / (2 * Double.pi * conventions.gyromagneticRatio * fieldStrength)
    }
}

/// A reconstruction method of one stage: a value type with documented, validated parameters.
public protocol Stage: Sendable {
    /// The method's parameters; every default cites its source.
    associatedtype Parameters: MethodParameters
    /// Registry name, lower case (`tkd`, `vsharp`, `region-growing`).
    static var name: String { get }
    /// The stage this method belongs to.
    static var kind: StageKind { get }
    /// One line for `list methods`.
    static var summary: String { get }
    /// The parameters this instance runs with.
    var parameters: Parameters { get set }
    /// A method with the given parameters.
    init(_ parameters: Parameters)
}

extension Stage {
    /// Throws `invalidParameter("<stage>.<name>", …)` for the first parameter outside its range.
    public func validateParameters() throws(QSMError) { try parameters.validate(stage: Self.kind.key) }
}

/// Masking: magnitude (first frame used unless documented otherwise) → binary brain mask.
public protocol MaskingMethod: Stage {
    /// A mask on the magnitude's grid.
    func apply(magnitude: Volume<Float>, context: StageContext) throws(QSMError) -> Mask
}

/// Spatial unwrapping: wrapped phase (rad, one frame per echo) → unwrapped phase (rad), same frames.
public protocol PhaseUnwrapping: Stage {
    /// Unwrapped phase; values outside `mask` are unspecified (set to 0 by the methods here).
    func apply(wrappedPhase: Volume<Float>, magnitude: Volume<Float>?, mask: Mask,
               context: StageContext) throws(QSMError) -> Volume<Float>
}

/// The product of echo combination.
public struct FieldEstimate: Sendable {
    /// Total field Δb in ppm, zero outside the mask.
    public var totalField: Volume<Float>
    /// Estimated echo-independent phase φ0 in rad (zero when not estimated).
    public var phaseOffset: Volume<Float>
    /// Standard deviation of the field estimate in ppm from the fit residuals (0 where not estimable).
    public var noise: Volume<Float>
    /// Bundles the three maps.
    public init(totalField: Volume<Float>, phaseOffset: Volume<Float>, noise: Volume<Float>) {
        self.totalField = totalField
        self.phaseOffset = phaseOffset
        self.noise = noise
    }
}

/// Echo combination: unwrapped phase (rad, one frame per echo) → total field (ppm).
public protocol EchoCombination: Stage {
    /// The field estimate; `magnitude` (same frames) gives weights when present.
    func apply(unwrappedPhase: Volume<Float>, magnitude: Volume<Float>?, mask: Mask,
               context: StageContext) throws(QSMError) -> FieldEstimate
}

/// The product of background removal: the local field and the voxels where it is valid.
public struct LocalField: Sendable {
    /// Local field Δb_local in ppm, zero outside `mask`.
    public var field: Volume<Float>
    /// Voxels where the method's result is valid (eroded for SMV-based methods).
    public var mask: Mask
    /// Bundles field and mask.
    public init(field: Volume<Float>, mask: Mask) {
        self.field = field
        self.mask = mask
    }
}

/// Background field removal: total field (ppm) inside `mask` → local field (ppm) and its mask.
public protocol BackgroundRemoval: Stage {
    /// The local field; only voxels inside `mask` of the total field are used.
    func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField
}

/// Per-voxel information that some inversions use beside the field (MEDI: edges and data weights).
public struct InversionSupport: Sendable {
    /// Magnitude image (one frame; e.g. the root-sum-of-squares over echoes).
    public var magnitude: Volume<Float>?
    /// Standard deviation of the field estimate, ppm.
    public var noise: Volume<Float>?
    /// Magnitude with one frame per echo (MEDI+0 fits R2* to find CSF).
    public var echoMagnitude: Volume<Float>?
    /// Bundles what is available.
    public init(magnitude: Volume<Float>? = nil, noise: Volume<Float>? = nil, echoMagnitude: Volume<Float>? = nil) {
        self.magnitude = magnitude
        self.noise = noise
        self.echoMagnitude = echoMagnitude
    }
}

/// Dipole inversion: local field (ppm) → χ (ppm), zero outside `mask`.
public protocol DipoleInversion: Stage {
    /// χ in ppm on the field's grid.
    func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float>
    /// χ in ppm, using magnitude and noise where the method has a use for them.
    func apply(localField: Volume<Float>, mask: Mask, context: StageContext, support: InversionSupport)
        throws(QSMError) -> Volume<Float>
}

extension DipoleInversion {
    /// Methods without a use for magnitude or noise ignore them.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext, support: InversionSupport)
        throws(QSMError) -> Volume<Float> {
        try apply(localField: localField, mask: mask, context: context)
    }
}

/// Referencing: χ → χ minus the mean of a reference region.
public protocol Referencing: Stage {
    /// Referenced χ (ppm), zero outside `mask`; `segmentation` holds integer labels when a label is used.
    func apply(susceptibility: Volume<Float>, mask: Mask, segmentation: Volume<Int32>?,
               context: StageContext) throws(QSMError) -> Volume<Float>
}
