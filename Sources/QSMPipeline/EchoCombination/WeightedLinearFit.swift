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
        let dof = echoes - parametersFitted
        // Each output voxel written once, in parallel (zero outside the mask and where no echo has
        // weight): no zero-fill passes first.
        func output() -> [Float] { [Float](unsafeUninitializedCapacity: n) { _, initialized in initialized = n } }
        var field = output(), offset = output(), noise = output()
        let emptyWeights: [Float] = []
        let weights = weighted ? magnitude!.voxels : emptyWeights
        unwrappedPhase.withVoxels { phaseBuffer in mask.withVoxels { insideBuffer in weights.withUnsafeBufferPointer { wb in
            field.withUnsafeMutableBufferPointer { fb in offset.withUnsafeMutableBufferPointer { ob in
                noise.withUnsafeMutableBufferPointer { nb in
                    let phase = ReadPointer(phaseBuffer.baseAddress!), inside = ReadPointer(insideBuffer.baseAddress!)
                    let magnitudes = weighted ? ReadPointer(wb.baseAddress!) : nil
                    let fp = SendablePointer(fb.baseAddress!), op = SendablePointer(ob.baseAddress!)
                    let np = SendablePointer(nb.baseAddress!)
                    let fit = VoxelFit(phase: phase, magnitudes: magnitudes, n: n, echoes: echoes, te: te,
                                       estimateOffset: estimateOffset, dof: dof, toPPM: toPPM)
                    parallelFor(0..<n) { range in
                        withUnsafeTemporaryAllocation(of: SIMD4<Double>.self, capacity: 2 * echoes) { scratch in
                            let w = scratch.baseAddress!, y = w + echoes
                            var i = range.lowerBound
                            // Four voxels at a time when all four are inside (each lane the scalar
                            // arithmetic, so the same Floats); the others one by one.
                            while i + 4 <= range.upperBound {
                                let flags = UnsafeRawPointer(inside.base + i).loadUnaligned(as: UInt32.self)
                                if flags == 0 {
                                    for k in i..<i + 4 { fp[k] = 0; op[k] = 0; np[k] = 0 }
                                } else if flags != 0x0101_0101 || !fit.four(i, w, y, fp, op, np) {
                                    for k in i..<i + 4 { fit.one(k, inside[k], fp, op, np) }
                                }
                                i += 4
                            }
                            while i < range.upperBound { fit.one(i, inside[i], fp, op, np); i += 1 }
                        }
                    }
                }
            } }
        } } }
        let grid = unwrappedPhase.grid
        return FieldEstimate(totalField: try Volume(grid: grid, voxels: field),
                             phaseOffset: try Volume(grid: grid, voxels: offset),
                             noise: try Volume(grid: grid, voxels: noise))
    }
}

/// The per-voxel weighted fit of `WeightedLinearFit`, one voxel or four at once.
private struct VoxelFit: Sendable {
    let phase: ReadPointer<Float>, magnitudes: ReadPointer<Float>?
    let n: Int, echoes: Int
    let te: [Double]
    let estimateOffset: Bool, dof: Int, toPPM: Double

    /// Fits voxel i (zero outputs outside the mask or without weight).
    @inline(__always) func one(_ i: Int, _ inside: Bool, _ fp: SendablePointer<Float>, _ op: SendablePointer<Float>,
                               _ np: SendablePointer<Float>) {
        guard inside else { fp[i] = 0; op[i] = 0; np[i] = 0; return }
        var sw = 0.0, st = 0.0, sy = 0.0
        for e in 0..<echoes {
            let w = magnitudes.map { Double($0[e * n + i]) * Double($0[e * n + i]) } ?? 1
            sw += w; st += w * te[e]; sy += w * Double(phase[e * n + i])
        }
        guard sw > 0 else { fp[i] = 0; op[i] = 0; np[i] = 0; return }    // zero magnitude in every echo: no information
        var omega = 0.0, phi0 = 0.0, stt = 0.0
        if estimateOffset {
            let tMean = st / sw, yMean = sy / sw
            var sty = 0.0
            for e in 0..<echoes {
                let w = magnitudes.map { Double($0[e * n + i]) * Double($0[e * n + i]) } ?? 1
                let dt = te[e] - tMean
                stt += w * dt * dt; sty += w * dt * (Double(phase[e * n + i]) - yMean)
            }
            omega = stt > 0 ? sty / stt : 0
            phi0 = yMean - omega * tMean
        } else {
            var sty = 0.0
            for e in 0..<echoes {
                let w = magnitudes.map { Double($0[e * n + i]) * Double($0[e * n + i]) } ?? 1
                stt += w * te[e] * te[e]; sty += w * te[e] * Double(phase[e * n + i])
            }
            omega = sty / stt
        }
        var residual = 0.0
        for e in 0..<echoes {
            let w = magnitudes.map { Double($0[e * n + i]) * Double($0[e * n + i]) } ?? 1
            let r = Double(phase[e * n + i]) - phi0 - omega * te[e]
            residual += w * r * r
        }
        fp[i] = Float(omega * toPPM)
        op[i] = Float(phi0)
        np[i] = dof > 0 && stt > 0 ? Float((residual / Double(dof) / stt).squareRoot() * abs(toPPM)) : 0
    }

    /// Fits voxels i…i+3 (all inside) lane by lane with the arithmetic of `one`; false (nothing
    /// written) when a lane has no weight or, with the offset, no spread of echo times (`one` then
    /// takes the lanes one by one). `w`, `y`: scratch for `echoes` vectors each.
    @inline(__always) func four(_ i: Int, _ w: UnsafeMutablePointer<SIMD4<Double>>, _ y: UnsafeMutablePointer<SIMD4<Double>>,
                                _ fp: SendablePointer<Float>, _ op: SendablePointer<Float>, _ np: SendablePointer<Float>) -> Bool {
        var sw = SIMD4<Double>.zero, st = SIMD4<Double>.zero, sy = SIMD4<Double>.zero
        for e in 0..<echoes {
            let p = phase.base + e * n + i
            y[e] = SIMD4(Double(p[0]), Double(p[1]), Double(p[2]), Double(p[3]))
            if let magnitudes {
                let m = magnitudes.base + e * n + i
                let v = SIMD4(Double(m[0]), Double(m[1]), Double(m[2]), Double(m[3]))
                w[e] = v * v
            } else {
                w[e] = SIMD4(repeating: 1)
            }
            sw += w[e]; st += w[e] * te[e]; sy += w[e] * y[e]
        }
        guard sw[0] > 0 && sw[1] > 0 && sw[2] > 0 && sw[3] > 0 else { return false }
        var omega = SIMD4<Double>.zero, phi0 = SIMD4<Double>.zero, stt = SIMD4<Double>.zero
        if estimateOffset {
            let tMean = st / sw, yMean = sy / sw
            var sty = SIMD4<Double>.zero
            for e in 0..<echoes {
                let dt = te[e] - tMean
                stt += w[e] * dt * dt; sty += w[e] * dt * (y[e] - yMean)
            }
            guard stt[0] > 0 && stt[1] > 0 && stt[2] > 0 && stt[3] > 0 else { return false }
            omega = sty / stt
            phi0 = yMean - omega * tMean
        } else {
            var sty = SIMD4<Double>.zero
            for e in 0..<echoes { stt += w[e] * te[e] * te[e]; sty += w[e] * te[e] * y[e] }
            omega = sty / stt
        }
        var residual = SIMD4<Double>.zero
        for e in 0..<echoes { let r = y[e] - phi0 - omega * te[e]; residual += w[e] * r * r }
        let field = omega * toPPM, variance = residual / Double(dof) / stt
        for lane in 0..<4 {
            fp[i + lane] = Float(field[lane])
            op[i + lane] = Float(phi0[lane])
            np[i + lane] = dof > 0 && stt[lane] > 0 ? Float(variance[lane].squareRoot() * abs(toPPM)) : 0
        }
        return true
    }
}
