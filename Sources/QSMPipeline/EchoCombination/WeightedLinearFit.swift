import QSMCore

/// Weighted least-squares fit of unwrapped phase against echo time, per voxel: φ_n = φ0 + ω·TE_n.
///
/// QSM.md §4.1 (QSM.jl `multi_echo_linear_fit`, QSM.rs `LinearFitParams`). Weights w_n = |S_n|²,
/// the inverse phase-noise variance (phase variance ≈ σ²/|S_n|²), or 1 without magnitude.
/// With offset: ω̂ = Σw(TE−T̄)(φ−φ̄)/Σw(TE−T̄)², φ̂0 = φ̄ − ω̂T̄. Through the origin (φ0 already
/// removed): ω̂ = Σw·TE·φ/Σw·TE². Field Δb = ω̂·10⁶/(2π·γ̄·B0) ppm (times the phase sign).
/// Noise map: SD of Δb from the residuals, σ̂² = Σw·r²/(N − p), Var(ω̂) = σ̂²/Σw(TE−T̄)²
/// (or /Σw·TE²); 0 where N ≤ p (no residual degrees of freedom).
public struct WeightedLinearFit: EchoCombination {
    /// How echoes are weighted.
    public enum Weighting: String, Sendable, Codable, CaseIterable {
        /// w = |S|², inverse phase-noise variance (QSM.md §4.1).
        case magnitudeSquared = "magnitude-squared"
        /// w = 1.
        case uniform
    }

    /// The fit's parameters.
    public struct Parameters: MethodParameters {
        /// Fit φ0 per voxel (true) or assume it was removed (false). Default: QSM.rs
        /// `LinearFitParams.estimate_offset`, QSM.jl `phase_offset = true`.
        public var estimateOffset = true
        /// Echo weights. Default: the inverse-variance weights of QSM.md §4.1.
        public var weighting = Weighting.magnitudeSquared
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.flag("estimateOffset", \.estimateOffset, "Fit the phase offset φ0 per voxel. Default: QSM.rs LinearFitParams, QSM.jl."),
             .choice("weighting", \.weighting, "Echo weights; magnitude-squared = inverse variance (QSM.md §4.1, default).")]
        }
    }

    public static let name = "linear-fit"
    public static let kind = StageKind.combination
    public static let summary = "Weighted least-squares phase-vs-TE fit with optional φ0 (QSM.md §4.1)"
    public var parameters: Parameters
    /// The fit with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Total field (ppm), φ0 (rad) and the field's noise SD (ppm), zero outside `mask`.
    public func apply(unwrappedPhase: Volume<Float>, magnitude: Volume<Float>?, mask: Mask,
                      context: StageContext) throws(QSMError) -> FieldEstimate {
        try validateParameters()
        try context.validate()
        try context.validateEchoTimes(frames: unwrappedPhase.frames)
        try unwrappedPhase.grid.requireMatches(mask.grid, "phase", "mask")
        guard mask.insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
        let echoes = unwrappedPhase.frames
        let parametersFitted = parameters.estimateOffset ? 2 : 1
        guard echoes >= parametersFitted else {
            throw .invalidParameter("combine.estimateOffset", "fitting φ0 and the field needs at least 2 echoes (got 1)")
        }
        let weighted = magnitude != nil && parameters.weighting == .magnitudeSquared
        if let magnitude {
            try unwrappedPhase.grid.requireMatches(magnitude.grid, "phase", "magnitude")
            guard magnitude.frames == echoes else {
                throw .mismatch("magnitude", "has \(magnitude.frames) echoes; the phase has \(echoes)")
            }
        }
        let n = unwrappedPhase.grid.count
        let te = context.echoTimes
        let toPPM = context.ppmPerRadianPerSecond
        let estimateOffset = parameters.estimateOffset
        let phase = unwrappedPhase.voxels, inside = mask.voxels
        let weights = weighted ? magnitude!.voxels : []
        var field = VoxelLoop.zeros(n), offset = VoxelLoop.zeros(n), noise = VoxelLoop.zeros(n)
        field.withUnsafeMutableBufferPointer { fb in offset.withUnsafeMutableBufferPointer { ob in
            noise.withUnsafeMutableBufferPointer { nb in
                let fp = SendablePointer(fb.baseAddress!), op = SendablePointer(ob.baseAddress!)
                let np = SendablePointer(nb.baseAddress!)
                parallelFor(0..<n) { range in
                    var w = [Double](repeating: 1, count: echoes), y = [Double](repeating: 0, count: echoes)
                    for i in range where inside[i] {
                        for e in 0..<echoes {
                            y[e] = Double(phase[e * n + i])
                            if weighted { let m = Double(weights[e * n + i]); w[e] = m * m }
                        }
                        var sw = 0.0, st = 0.0, sy = 0.0
                        for e in 0..<echoes { sw += w[e]; st += w[e] * te[e]; sy += w[e] * y[e] }
                        guard sw > 0 else { continue }      // zero magnitude in every echo: no information
                        var omega = 0.0, phi0 = 0.0, stt = 0.0
                        if estimateOffset {
                            let tMean = st / sw, yMean = sy / sw
                            var sty = 0.0
                            for e in 0..<echoes {
                                let dt = te[e] - tMean
                                stt += w[e] * dt * dt; sty += w[e] * dt * (y[e] - yMean)
                            }
                            omega = stt > 0 ? sty / stt : 0
                            phi0 = yMean - omega * tMean
                        } else {
                            var sty = 0.0
                            for e in 0..<echoes { stt += w[e] * te[e] * te[e]; sty += w[e] * te[e] * y[e] }
                            omega = sty / stt
                        }
                        var residual = 0.0
                        for e in 0..<echoes { let r = y[e] - phi0 - omega * te[e]; residual += w[e] * r * r }
                        let dof = echoes - parametersFitted
                        fp[i] = Float(omega * toPPM)
                        op[i] = Float(phi0)
                        np[i] = dof > 0 && stt > 0 ? Float((residual / Double(dof) / stt).squareRoot() * abs(toPPM)) : 0
                    }
                }
            }
        } }
        let grid = unwrappedPhase.grid
        return FieldEstimate(totalField: try Volume(grid: grid, voxels: field),
                             phaseOffset: try Volume(grid: grid, voxels: offset),
                             noise: try Volume(grid: grid, voxels: noise))
    }
}
