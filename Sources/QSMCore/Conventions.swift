/// Value of the dipole kernel at k = 0, which is 0/0 and must be chosen (QSM.md §2.2).
public enum DipoleDC: String, Sendable, Codable, CaseIterable {
    /// D(0) = 0: the field has zero mean over the FFT box (QSM.jl, QSM.rs).
    case zero
    /// D(0) = 1/3: the field carries mean(χ)/3 (qsm-forward, SEPIA).
    case oneThird = "one-third"

    /// The numerical value of D(0).
    public var value: Double { self == .zero ? 0 : 1.0 / 3 }
}

/// Conventions that differ between toolboxes; recorded with every result file.
public struct Conventions: Hashable, Sendable, Codable {
    /// γ̄ = γ/2π in MHz/T. Default 42.5775 (free proton, rounded; QSM.md §1.2, §11).
    public var gyromagneticRatio: Double = 42.5775
    /// D(0) of the dipole kernel. Default zero (QSM.md §11).
    public var dipoleDC: DipoleDC = .zero
    /// +1 when phase = +2π·γ̄·B0·Δb·TE (QSM.jl, QSM.rs, qsm-forward); −1 for the reverse.
    public var phaseSign: Double = 1
    /// Units of fields and χ inside the pipeline.
    public var fieldUnit: String = "ppm"

    /// The defaults.
    public init() {}

    /// Field in ppm from unwrapped phase (rad) accumulated over `echoTime` (s) at `fieldStrength` (T).
    public func ppm(fromPhase phase: Double, echoTime: Double, fieldStrength: Double) -> Double {
        phaseSign * phase * 1e6 / (2 * Double.pi * gyromagneticRatio * 1e6 * fieldStrength * echoTime)
    }

    /// Phase (rad) accumulated over `echoTime` (s) from a field in ppm at `fieldStrength` (T).
    public func phase(fromPPM ppm: Double, echoTime: Double, fieldStrength: Double) -> Double {
        phaseSign * 2 * Double.pi * gyromagneticRatio * 1e6 * fieldStrength * echoTime * ppm * 1e-6
    }

    /// Key/value pairs for sidecars and HDF5 attributes.
    public var record: [String: String] {
        ["gyromagnetic_ratio_MHz_per_T": "\(gyromagneticRatio)", "dipole_dc": dipoleDC.rawValue,
         "phase_sign": phaseSign > 0 ? "+1" : "-1", "field_unit": fieldUnit]
    }
}
