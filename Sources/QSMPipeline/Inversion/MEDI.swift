import QSMCore

/// Morphology-enabled dipole inversion with the nonlinear data term (MEDI-L1, Gauss–Newton + CG).
///
/// Liu T, Liu J, de Rochefort L, Spincemaille P, Khalidov I, Ledoux JR, et al. MRM 2011;66:777–783.
/// doi:10.1002/mrm.22816. Nonlinear data term: Liu T, Wisnieff C, Lou M, Chen W, Spincemaille P,
/// Wang Y. MRM 2013;69:467–476. doi:10.1002/mrm.24272. Solver as `MEDI_L1.m` (QSM.md §7.9):
///
///     min_χ ‖M_G∇χ‖₁ + λ‖W(e^{iDχ} − e^{iφ})‖²,   φ = local field × `phaseScale` (rad)
///
/// Each outer step linearises the L1 term with weights 1/√(|M_G∇χ|² + ε) and e^{iDχ} around χ,
/// solves (∇ᵀM_G V M_G∇ + 2λ DᵀW²D) dχ = −b by CG, and stops when ‖dχ‖/‖χ‖ < tol.
/// M_G is 1 away from magnitude edges: the threshold on |∇ magnitude| is adjusted by ×1.05/×0.95
/// until `edgeFraction` of the mask's voxel count sees gradient components above it
/// (`gradient_mask.m`). Without a magnitude, M_G = 1 (plain TV).
///
/// MEDI+0 (`lambdaCSF > 0`): Liu Z, Spincemaille P, Yao Y, Zhang Y, Wang Y. MRM 2018;79:2795–2803.
/// doi:10.1002/mrm.26946. Adds (λ_CSF/2)‖M_CSF(χ − mean_CSF χ)‖² (`reg_CSF.m`), which makes the
/// ventricular CSF uniform, and subtracts the CSF mean at the end (CSF is the zero reference).
/// M_CSF comes from R2* fitted to the multi-echo magnitude (`CSFMask`, as `extract_CSF.m`).
public struct MEDI: IterativeInversion {
    /// Parameters; defaults from the MEDI toolbox `parse_QSM_input.m` (recent version).
    public struct Parameters: MethodParameters {
        /// Data-term weight λ > 0 (phase in radians). Default 1000 (MEDI toolbox).
        public var lambda = 1000.0
        /// Ratio of above-threshold gradient components to mask voxels defining edges, in (0, 3). Default 0.9.
        public var edgeFraction = 0.9
        /// Gauss–Newton iteration cap ≥ 1. Default 10.
        public var maxIterations = 10
        /// Stop when ‖dχ‖/‖χ‖ falls below this, in (0, 1). Default 0.1.
        public var tolerance = 0.1
        /// CG iteration cap per Gauss–Newton step ≥ 1. Default 100.
        public var cgMaxIterations = 100
        /// CG relative-residual tolerance in (0, 1). Default 0.01.
        public var cgTolerance = 0.01
        /// Smoothing ε of the L1 weights, > 0. Default 1e-6 (`MEDI_L1.m`).
        public var epsilon = 1e-6
        /// ΔTE (s) turning ppm into radians of phase (2π·γ̄·B0·ΔTE); 0 takes TE₂ − TE₁ from the context
        /// (TE₁ with one echo, 5 ms without echo times), as MEDI uses the echo spacing.
        public var echoSpacing = 0.0
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// Weight λ_CSF ≥ 0 of the CSF uniformity term (phase in radians); 0 = off (plain MEDI). The
        /// MEDI toolbox uses 100 when MEDI+0 is on.
        public var lambdaCSF = 0.0
        /// R2* (s⁻¹) below which a voxel counts as CSF. Default 5 (`extract_CSF.m`).
        public var csfR2StarThreshold = 5.0
        /// Radius (mm) around the mask's centroid in which the ventricles are sought. Default 30 (`extract_CSF.m`).
        public var csfCentreRadius = 30.0
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("lambda", \.lambda, in: .positive, "Data-term weight λ (phase in radians). Default 1000 (MEDI toolbox)."),
             .real("edgeFraction", \.edgeFraction, in: Interval(0, 3, lowerClosed: false, upperClosed: false),
                   "Edge gradient components per mask voxel defining M_G. Default 0.9 (MEDI toolbox gradient_mask)."),
             .integer("maxIterations", \.maxIterations, in: 1...1000, "Gauss–Newton steps. Default 10 (MEDI toolbox)."),
             .real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖dχ‖/‖χ‖ falls below this. Default 0.1 (MEDI toolbox)."),
             .integer("cgMaxIterations", \.cgMaxIterations, in: 1...100_000, "CG iterations per step. Default 100 (MEDI toolbox)."),
             .real("cgTolerance", \.cgTolerance, in: .openUnit, "CG relative residual. Default 0.01 (MEDI toolbox)."),
             .real("epsilon", \.epsilon, in: .positive, "Smoothing of the L1 weights. Default 1e-6 (MEDI_L1.m)."),
             .real("echoSpacing", \.echoSpacing, in: Interval(0, 1, upperClosed: false), "ΔTE, s; 0 = from the echo times. Default 0."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0."),
             .real("lambdaCSF", \.lambdaCSF, in: .nonNegative,
                   "MEDI+0 CSF uniformity weight λ_CSF; 0 = off. 100 when on (MEDI toolbox; Liu Z et al. 2018)."),
             .real("csfR2StarThreshold", \.csfR2StarThreshold, in: .positive, "R2* (1/s) below which voxels are CSF. Default 5 (MEDI toolbox extract_CSF)."),
             .real("csfCentreRadius", \.csfCentreRadius, in: .positive, "Radius (mm) around the mask centroid holding the ventricles. Default 30 (MEDI toolbox extract_CSF).")]
        }
    }

    /// Registry name.
    public static let name = "medi"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Morphology-enabled dipole inversion, nonlinear L1 (Liu et al. 2011, 2013)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm); `magnitude` defines edges, `noise` (field SD) the data weights.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        try invert(localField: localField, mask: mask, context: context, magnitude: nil, noise: nil)
    }

    /// χ (ppm) using the magnitude for edges and the noise map for data weights when given; with
    /// `lambdaCSF > 0` the CSF mask comes from R2* of the multi-echo magnitude.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext, support: InversionSupport)
        throws(QSMError) -> Volume<Float> {
        var csf: Mask?
        if parameters.lambdaCSF > 0 {
            guard let echoes = support.echoMagnitude, echoes.frames >= 2 else {
                throw .invalidParameter("inversion.lambdaCSF", "MEDI+0 finds CSF by R2*, which needs magnitude with at least two echoes")
            }
            csf = try csfMask(echoMagnitude: echoes, mask: mask, context: context)
        }
        return try invert(localField: localField, mask: mask, context: context, magnitude: support.magnitude,
                          noise: support.noise, csfMask: csf).chi
    }

    /// The ventricular CSF mask MEDI+0 uses: R2* fitted to `echoMagnitude` (one frame per echo time
    /// of the context), then `CSFMask.ventricles` with this method's threshold and radius.
    public func csfMask(echoMagnitude: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Mask {
        let r2star = try CSFMask.r2star(magnitude: echoMagnitude, echoTimes: context.echoTimes, mask: mask)
        return try CSFMask.ventricles(r2star: r2star, mask: mask, threshold: parameters.csfR2StarThreshold,
                                      centreRadius: parameters.csfCentreRadius)
    }

    /// Radians of phase per ppm: 2π·γ̄·B0·ΔTE with ΔTE from the parameters or the context.
    public func phaseScale(_ context: StageContext) -> Double {
        var spacing = parameters.echoSpacing
        if spacing == 0 {
            let te = context.echoTimes
            spacing = te.count >= 2 ? te[1] - te[0] : (te.first ?? 0.005)
        }
        return 2 * Double.pi * context.conventions.gyromagneticRatio * context.fieldStrength * spacing
    }

    /// As `invert`, with the magnitude defining edges, the field's noise SD (ppm) the data weights,
    /// and, when `lambdaCSF > 0`, `csfMask` the region made uniform and used as zero reference.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext,
                       magnitude: Volume<Float>?, noise: Volume<Float>?, csfMask: Mask? = nil)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")
        if let magnitude { try localField.grid.requireMatches(magnitude.grid, "local field", "magnitude") }
        if let noise { try localField.grid.requireMatches(noise.grid, "local field", "noise map") }
        var csf: [Float]?, csfCount: Float = 0
        if p.lambdaCSF > 0 {
            guard let csfMask else { throw .invalidParameter("inversion.lambdaCSF", "MEDI+0 needs a CSF mask") }
            try localField.grid.requireMatches(csfMask.grid, "local field", "CSF mask")
            let inside = csfMask.voxels.indices.map { csfMask.voxels[$0] && mask.voxels[$0] }
            csfCount = Float(inside.reduce(0) { $0 + ($1 ? 1 : 0) })
            guard csfCount > 0 else { throw .invalidParameter("inversion.lambdaCSF", "the CSF mask has no voxel inside the mask") }
            csf = inside.map { $0 ? 1 : 0 }
        }
        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count
        let scale = Float(phaseScale(context))
        let phase = grid.pad(localField.masked(by: mask).voxels.map { $0 * scale })
        let weight2 = grid.pad(dataWeights(mask: mask, noise: noise)).map { $0 * $0 }
        let (edgeX, edgeY, edgeZ) = edgeMask(grid: grid, mask: mask, magnitude: magnitude)
        let lambda2 = Float(2 * p.lambda), epsilon = Float(p.epsilon), lambdaCSF = Float(p.lambdaCSF)
        let csfPadded = csf.map { grid.pad($0) }
        // L(x) = M_CSF(x − mean_CSF x), an orthogonal projection, so ∇ of (λ/2)‖Lx‖² is λ·Lx.
        func csfMean(_ x: [Float]) -> Float {
            guard let m = csfPadded else { return 0 }
            let sum = x.withUnsafeBufferPointer { xb in m.withUnsafeBufferPointer { mb in
                let xp = ReadPointer(xb.baseAddress!), mp = ReadPointer(mb.baseAddress!)
                return chunkedSums(count: xb.count) { r in
                    var s = 0.0
                    for i in r where mp[i] != 0 { s += Double(xp[i]) }
                    return SIMD4(s, 0, 0, 0)
                }[0]
            } }
            return Float(sum / Double(csfCount))
        }
        let csfWeight = csfPadded ?? []
        let hasCSF = csfPadded != nil

        // All buffers live outside the loops; the elementwise work is parallel and fused.
        var chi = VoxelLoop.zeros(n)
        var gx = chi, gy = chi, gz = chi, vx = chi, vy = chi, vz = chi
        var dChi = chi, b = chi, scratch = chi, wave = chi
        var spectrum = grid.spectrumBuffer()
        // W²-weighted dipole products: W² = 0 outside the mask, where planes are not transformed.
        let dipole = SpectralFilter(dipoleOf: grid), weighted = dipole.planes(of: weight2)
        var log = IterationLog()

        for iteration in 1...p.maxIterations {
            // Linearisation point: V = M_G²/√(|M_G∇χ|² + ε) per component; (gx, gy, gz) ← V∇χ.
            grid.gradient(chi, into: &gx, &gy, &gz)
            Self.linearise(&gx, weight: &vx, edges: edgeX, epsilon: epsilon)
            Self.linearise(&gy, weight: &vy, edges: edgeY, epsilon: epsilon)
            Self.linearise(&gz, weight: &vz, edges: edgeZ, epsilon: epsilon)
            dipole.apply(chi, into: &dChi, spectrum: &spectrum, outputPlanes: weighted)
            // b = −[∇ᵀ(V∇χ) + 2λ·D(W² sin(Dχ − φ)) + λ_CSF·L χ].
            scratch.withUnsafeMutableBufferPointer { sb in dChi.withUnsafeBufferPointer { db in
                phase.withUnsafeBufferPointer { pb in weight2.withUnsafeBufferPointer { wb in
                    let s = SendablePointer(sb.baseAddress!), d = ReadPointer(db.baseAddress!)
                    let ph = ReadPointer(pb.baseAddress!), w = ReadPointer(wb.baseAddress!)
                    parallelFor(0..<sb.count) { r in for i in r { s[i] = w[i] * Float.sin(d[i] - ph[i]) } }
                } }
            } }
            dipole.apply(scratch, into: &b, spectrum: &spectrum, inputPlanes: weighted)
            grid.gradientAdjoint(gx, gy, gz, into: &wave)
            let chiMean = csfMean(chi)
            _ = Self.combine(wave: wave, lambda2: lambda2, x: chi, csf: hasCSF ? csfWeight : nil, csfMean: chiMean,
                             lambdaCSF: lambdaCSF, negate: true, into: &b)

            // A·x = ∇ᵀ(V∇x) + 2λ·D(W²·Dx) + λ_CSF·L x.
            let step = ConjugateGradient.solve(rhs: b, tolerance: p.cgTolerance, maxIterations: p.cgMaxIterations,
                                               fusedOperator: { x, out in
                grid.weightedLaplacian(x, weights: vx, vy, vz, into: &wave)
                dipole.apply(x, into: &scratch, spectrum: &spectrum, outputWeight: weight2, outputPlanes: weighted)
                dipole.apply(scratch, into: &out, spectrum: &spectrum, inputPlanes: weighted)
                let mean = csfMean(x)
                return Self.combine(wave: wave, lambda2: lambda2, x: x, csf: hasCSF ? csfWeight : nil, csfMean: mean,
                                    lambdaCSF: lambdaCSF, negate: false, into: &out)
            }).solution
            let sums = chi.withUnsafeMutableBufferPointer { cb in step.withUnsafeBufferPointer { sb in
                let c = SendablePointer(cb.baseAddress!), s = ReadPointer(sb.baseAddress!)
                return chunkedSums(count: cb.count) { r in
                    var change = 0.0, size = 0.0
                    for i in r {
                        let value = c[i] + s[i]
                        c[i] = value
                        change += Double(s[i]) * Double(s[i]); size += Double(value) * Double(value)
                    }
                    return SIMD4(change, size, 0, 0)
                }
            } }
            let relative = sums[1] > 0 ? (sums[0] / sums[1]).squareRoot() : 0
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        if hasCSF {
            // CSF is the zero reference (MEDI_L1.m with lambda_CSF).
            let mean = csfMean(chi)
            VectorPass.add(&chi, -mean)
        }
        var out = grid.crop(consuming: consume chi, mask: mask)
        out.withMutableVoxels { x in for i in x.indices { x[i] /= scale } }
        return (out, log)
    }

    /// v ← M_G²/√((M_G·g)² + ε) and g ← v·g for one gradient component, in one parallel pass.
    private static func linearise(_ g: inout [Float], weight v: inout [Float], edges e: [Float], epsilon: Float) {
        g.withUnsafeMutableBufferPointer { gb in v.withUnsafeMutableBufferPointer { vb in e.withUnsafeBufferPointer { eb in
            let gp = SendablePointer(gb.baseAddress!), vp = SendablePointer(vb.baseAddress!), ep = ReadPointer(eb.baseAddress!)
            parallelFor(0..<gb.count) { r in
                for i in r {
                    let m = ep[i], a = m * gp[i], weight = m * m / (a * a + epsilon).squareRoot()
                    vp[i] = weight; gp[i] *= weight
                }
            }
        } } }
    }

    /// out ← ±(wave + 2λ·out + λ_CSF·M_CSF(x − mean)) in one parallel pass (`negate` gives −);
    /// returns x·out (Double, fixed chunks as `VoxelLoop.dot`) for CG.
    private static func combine(wave: [Float], lambda2: Float, x: [Float], csf: [Float]?, csfMean: Float, lambdaCSF: Float,
                                negate: Bool, into out: inout [Float]) -> Double {
        let sign: Float = negate ? -1 : 1
        let hasCSF = csf != nil, mask = csf ?? x        // x stands in (unread) without a CSF mask
        return out.withUnsafeMutableBufferPointer { ob in wave.withUnsafeBufferPointer { wb in x.withUnsafeBufferPointer { xb in
            mask.withUnsafeBufferPointer { mb in
                let o = SendablePointer(ob.baseAddress!), w = ReadPointer(wb.baseAddress!), xp = ReadPointer(xb.baseAddress!)
                let m: ReadPointer<Float>? = hasCSF ? ReadPointer(mb.baseAddress!) : nil
                return chunkedSums(count: ob.count) { r in
                    var dot = 0.0
                    if let m {
                        for i in r {
                            var value = w[i] + lambda2 * o[i]
                            if m[i] != 0 { value += lambdaCSF * (xp[i] - csfMean) }
                            value *= sign
                            o[i] = value; dot += Double(xp[i]) * Double(value)
                        }
                    } else {
                        for i in r {
                            let value = sign * (w[i] + lambda2 * o[i])
                            o[i] = value; dot += Double(xp[i]) * Double(value)
                        }
                    }
                    return SIMD4(dot, 0, 0, 0)
                }[0]
            }
        } } }
    }

    /// W = mask/σ normalised to mean 1 over the mask (`dataterm_mask` mode 1), or the mask.
    private func dataWeights(mask: Mask, noise: Volume<Float>?) -> [Float] {
        guard let noise else { return mask.voxels.map { $0 ? 1 : 0 } }
        var w = VoxelLoop.zeros(mask.voxels.count)
        var sum = 0.0, count = 0
        for i in 0..<w.count where mask.voxels[i] && noise.voxels[i] > 0 && noise.voxels[i].isFinite {
            w[i] = 1 / noise.voxels[i]; sum += Double(w[i]); count += 1
        }
        let mean = count > 0 ? Float(sum / Double(count)) : 1
        return w.map { $0 / mean }
    }

    /// Per-component M_G (1 = regularised, 0 = edge) on the padded grid (`gradient_mask.m`).
    private func edgeMask(grid: InversionGrid, mask: Mask, magnitude: Volume<Float>?) -> ([Float], [Float], [Float]) {
        let n = grid.count
        guard let magnitude else {
            let ones = [Float](repeating: 1, count: n)
            return (ones, ones, ones)
        }
        var gx = VoxelLoop.zeros(n), gy = VoxelLoop.zeros(n), gz = VoxelLoop.zeros(n)
        grid.gradient(grid.pad(magnitude.masked(by: mask).voxels), into: &gx, &gy, &gz)
        let target = parameters.edgeFraction * Double(mask.insideCount)
        let peak = magnitude.masked(by: mask).voxels.map { abs($0) }.max() ?? 0
        var threshold = 0.01 * peak
        func edges(_ t: Float) -> Double {
            var c = 0
            for i in 0..<n { c += (abs(gx[i]) > t ? 1 : 0) + (abs(gy[i]) > t ? 1 : 0) + (abs(gz[i]) > t ? 1 : 0) }
            return Double(c)
        }
        if threshold > 0 {
            if edges(threshold) > target {
                var guardCount = 0
                while edges(threshold) > target && guardCount < 2000 { threshold *= 1.05; guardCount += 1 }
            } else {
                var guardCount = 0
                while edges(threshold) < target && guardCount < 2000 { threshold *= 0.95; guardCount += 1 }
            }
        }
        let t = threshold
        return (gx.map { abs($0) <= t ? 1 : 0 }, gy.map { abs($0) <= t ? 1 : 0 }, gz.map { abs($0) <= t ? 1 : 0 })
    }
}
