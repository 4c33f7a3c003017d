import QSMCore

/// Total-variation inversion by ADMM: min ½‖Dχ − f‖² + λ‖∇χ‖₁, or with the nonlinear data term
/// ½‖e^{iDχ} − e^{if}‖² on the field as phase.
///
/// Linear: Bilgic B, Fan AP, Polimeni JR, Cauley SF, Bianciardi M, Adalsteinsson E, et al. MRM
/// 2014;72:1444–1459. doi:10.1002/mrm.25029. Updates as QSM.jl `tv` (QSM.md §7.5): split z = ∇χ with
/// scaled dual u; χ-step in k-space, z-step by anisotropic soft thresholding at λ/ρ; two FFTs per
/// iteration; stop when ‖χᵏ⁺¹ − χᵏ‖/‖χᵏ⁺¹‖ < tol or after `maxIterations`.
///
/// Nonlinear (`dataTerm = nonlinear`): Milovic C, Bilgic B, Zhao B, Acosta-Cabronero J, Tejos C.
/// MRM 2018;80:814–821. doi:10.1002/mrm.27073 (FANSI; QSM.jl `nltv`, QSM.md §7.6). A second split
/// y = Dχ with scaled dual v and penalty μ; the y-step is voxel-wise Newton on
/// sin(y − f) + μ(y − (Dχ + v)) = 0; four FFTs per iteration. The field is turned into phase by
/// `phaseScale` (rad/ppm) and λ is scaled with it (λ·s on χ in radians), so for small residuals
/// the objective is s² times the linear one and both give the same χ; where the phase residual is
/// large (an unwrapping error of 2π, noise in low-signal voxels) the data term saturates, and it is
/// blind to 2π jumps.
///
/// Data weights (`dataWeighting`): `none` (default, QSM.jl `tv`/`nltv` without W) puts the data term
/// on the whole padded grid, where f is 0 outside the mask — it asks the field of χ to vanish
/// outside the brain, which the true local field does not. `mask` (W = mask, as MEDI's data term
/// and FANSI's masked weights) leaves the outside free; it takes the split y = Dχ for the linear
/// term too (closed-form y-step y = (W²f + μa)/(W² + μ)), four FFTs per iteration.
public struct TVADMM: IterativeInversion {
    /// Which data-fidelity term the ADMM minimises.
    public enum DataTerm: String, Codable, Sendable, CaseIterable {
        /// ½‖Dχ − f‖² (Bilgic et al. 2014; QSM.jl `tv`).
        case linear
        /// ½‖e^{iDχ} − e^{if}‖² with f in radians (Milovic et al. 2018; QSM.jl `nltv`).
        case nonlinear
    }

    /// Where the data term applies.
    public enum DataWeighting: String, Codable, Sendable, CaseIterable {
        /// Everywhere on the padded grid (QSM.jl without weights).
        case none
        /// Inside the mask only (W = mask).
        case mask
    }

    /// Parameters; defaults from QSM.jl `tv` (λ 1e-3, ρ = 100λ, tol 1e-3, 250 iterations) and `nltv`
    /// (μ 1, Newton tol 1e-6, ≤ 10 Newton steps).
    public struct Parameters: MethodParameters {
        /// TV weight λ > 0 (fields in ppm). Default QSM.jl `tv`.
        public var lambda = 1e-3
        /// ADMM penalty ρ ≥ 0; 0 means 100·λ (QSM.jl `tv`).
        public var rho = 0.0
        /// Relative-change stopping tolerance in (0, 1). Default QSM.jl `tv`.
        public var tolerance = 1e-3
        /// Iteration cap ≥ 1. Default QSM.jl `tv`.
        public var maxIterations = 250
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// Linear (default) or nonlinear data term.
        public var dataTerm = DataTerm.linear
        /// Where the data term applies: the padded grid (default, QSM.jl) or the mask.
        public var dataWeighting = DataWeighting.none
        /// Penalty μ of the y = Dχ split (nonlinear or masked) > 0. Default 1 (QSM.jl nltv).
        public var mu = 1.0
        /// Radians of phase per ppm for the nonlinear term, ≥ 0; 0 takes 2π·γ̄·B0·ΔTE with ΔTE the
        /// echo spacing from the context (TE₁ with one echo, 5 ms without echo times), as MEDI does.
        public var phaseScale = 0.0
        /// Newton steps per y-update ≥ 1. Default 10 (QSM.jl nltv).
        public var newtonIterations = 10
        /// Newton stopping tolerance on |δy|/|y| per voxel in (0, 1). Default 1e-6 (QSM.jl nltv).
        public var newtonTolerance = 1e-6
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("lambda", \.lambda, in: .positive, "TV weight λ (fields in ppm). Default 1e-3 (QSM.jl tv)."),
             .real("rho", \.rho, in: .nonNegative, "ADMM penalty ρ; 0 means 100·λ. Default 100·λ (QSM.jl tv)."),
             .real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖Δχ‖/‖χ‖ falls below this. Default 1e-3 (QSM.jl tv)."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "Iteration cap. Default 250 (QSM.jl tv)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0 (QSM.jl)."),
             .choice("dataTerm", \.dataTerm, "Data term: linear ½‖Dχ − f‖² or nonlinear ½‖e^{iDχ} − e^{if}‖². Default linear (QSM.jl tv; nonlinear = QSM.jl nltv, FANSI)."),
             .choice("dataWeighting", \.dataWeighting, "Data term on the padded grid (none) or inside the mask only (mask). Default none (QSM.jl tv/nltv without W)."),
             .real("mu", \.mu, in: .positive, "Penalty μ of the y = Dχ split (nonlinear or masked). Default 1 (QSM.jl nltv)."),
             .real("phaseScale", \.phaseScale, in: .nonNegative, "Radians per ppm for the nonlinear term; 0 = 2π·γ̄·B0·ΔTE from the echo times. Default 0."),
             .integer("newtonIterations", \.newtonIterations, in: 1...1000, "Newton steps per y-update (nonlinear). Default 10 (QSM.jl nltv)."),
             .real("newtonTolerance", \.newtonTolerance, in: .openUnit, "Newton stop on |δy|/|y| per voxel (nonlinear). Default 1e-6 (QSM.jl nltv).")]
        }
    }

    /// Registry name.
    public static let name = "tv"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Total variation by ADMM, linear or nonlinear data term (Bilgic et al. 2014; Milovic et al. 2018)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Radians of phase per ppm used by the nonlinear term: `phaseScale`, or 2π·γ̄·B0·ΔTE.
    public func phaseScale(_ context: StageContext) -> Double {
        if parameters.phaseScale > 0 { return parameters.phaseScale }
        let te = context.echoTimes
        let spacing = te.count >= 2 ? te[1] - te[0] : (te.first ?? 0.005)
        return 2 * Double.pi * context.conventions.gyromagneticRatio * context.fieldStrength * spacing
    }

    /// χ (ppm) and the per-iteration record. The objective, when asked, is ½‖Dχ − f‖² + λ‖∇χ‖₁
    /// (ppm) for the linear term and Σ(1 − cos(Dχ − f)) + λs‖∇χ‖₁ in radians for the nonlinear one.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")
        if p.dataTerm == .nonlinear || p.dataWeighting == .mask {
            return try invertSplit(localField: localField, mask: mask, context: context, recordObjective: recordObjective)
        }

        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count, h = grid.halfCount
        let lambda = Float(p.lambda), rho = Float(p.rho > 0 ? p.rho : 100 * p.lambda)
        let threshold = lambda / rho
        let f = grid.pad(localField.masked(by: mask).voxels)
        let fHat = grid.fft.forward(f)

        // Constant parts of the χ-step: D·F[f]/(D² + ρL) and ρ/(D² + ρL).
        var constant = [Complex<Float>](repeating: .zero, count: h)
        var gain = [Float](repeating: 0, count: h)
        for i in 0..<h {
            let d = grid.dipole[i], a = d * d + rho * grid.laplacian[i]
            if a > 0 { constant[i] = fHat[i] * (d / a); gain[i] = rho / a }
        }

        var chi = [Float](repeating: 0, count: n), previous = chi
        var zx = chi, zy = chi, zz = chi, ux = chi, uy = chi, uz = chi
        var gx = chi, gy = chi, gz = chi, work = chi
        var spectrum = [Complex<Float>](repeating: .zero, count: h)
        var log = IterationLog()
        for iteration in 1...p.maxIterations {
            swap(&chi, &previous)
            // χ-step: F⁻¹[constant + gain·F[∇ᵀ(z − u)]].
            for i in 0..<n { gx[i] = zx[i] - ux[i]; gy[i] = zy[i] - uy[i]; gz[i] = zz[i] - uz[i] }
            grid.gradientAdjoint(gx, gy, gz, into: &work)
            work.withUnsafeBufferPointer { w in spectrum.withUnsafeMutableBufferPointer { grid.fft.forward(w, into: $0) } }
            for i in 0..<h { spectrum[i] = constant[i] + spectrum[i] * gain[i] }
            spectrum.withUnsafeMutableBufferPointer { s in chi.withUnsafeMutableBufferPointer { grid.fft.inverse(s, into: $0) } }

            var change = 0.0, size = 0.0
            for i in 0..<n {
                let d = Double(chi[i] - previous[i]); change += d * d; size += Double(chi[i]) * Double(chi[i])
            }
            let relative = size > 0 ? (change / size).squareRoot() : 0
            // z- and u-steps.
            grid.gradient(chi, into: &gx, &gy, &gz)
            for i in 0..<n {
                let vx = gx[i] + ux[i], vy = gy[i] + uy[i], vz = gz[i] + uz[i]
                zx[i] = softThreshold(vx, threshold); zy[i] = softThreshold(vy, threshold); zz[i] = softThreshold(vz, threshold)
                ux[i] = vx - zx[i]; uy[i] = vy - zy[i]; uz[i] = vz - zz[i]
            }
            if recordObjective {
                log.objective.append(objective(chi, f: f, grid: grid, lambda: Double(lambda), gx: gx, gy: gy, gz: gz))
            }
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        return (grid.crop(chi).masked(by: mask), log)
    }

    /// ADMM with the second split y = Dχ: the nonlinear term, or the linear one with data weights.
    private func invertSplit(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        let nonlinear = p.dataTerm == .nonlinear
        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count, h = grid.halfCount
        let scale = nonlinear ? Float(phaseScale(context)) : 1
        let weight2 = p.dataWeighting == .mask ? grid.pad(mask.voxels.map { $0 ? Float(1) : 0 })
            : [Float](repeating: 1, count: n)
        // χ and the field in radians; λ·s keeps λ's meaning (ppm) of the linear term, ρ and μ carry over.
        let lambda = Float(p.lambda) * scale, rho = Float(p.rho > 0 ? p.rho : 100 * p.lambda), mu = Float(p.mu)
        let threshold = lambda / rho
        let f = grid.pad(localField.masked(by: mask).voxels.map { $0 * scale })

        // χ-step: X̂ = (ρ·F[∇ᵀ(z − u)] + μ·D·F[y − v]) / (ρL + μD²).
        var inverse = [Float](repeating: 0, count: h)
        for i in 0..<h {
            let d = grid.dipole[i], a = mu * d * d + rho * grid.laplacian[i]
            if a > 0 { inverse[i] = 1 / a }
        }
        var chi = [Float](repeating: 0, count: n), previous = chi
        var zx = chi, zy = chi, zz = chi, ux = chi, uy = chi, uz = chi
        var y = chi, v = chi, dChi = chi
        var gx = chi, gy = chi, gz = chi, work = chi
        var spectrum = [Complex<Float>](repeating: .zero, count: h), dataSpectrum = spectrum
        var log = IterationLog()
        for iteration in 1...p.maxIterations {
            swap(&chi, &previous)
            // y-step: minimise W²(1 − cos(y − f)) + (μ/2)(y − a)², a = Dχ + v, by Newton from y = a. It
            // is not convex in y; Newton from a finds the minimiser nearest a, as QSM.jl nltv does.
            // It runs before the χ-step, so iteration 1 starts from Dχ = 0, v = 0: f enters only
            // through sin and cos, and a 2π jump in f changes nothing. The curvature W²cos(y − f) + μ
            // vanishes at cos = −μ (μ ≤ 1); it is kept ≥ μ/2 (a damped step there). Each voxel is an
            // independent 1-D problem and stops on its own |δ| ≤ tol·|y| (QSM.jl tests the norms over
            // the grid), so the voxels run in parallel and the result is independent of thread count.
            for i in 0..<n { work[i] = dChi[i] + v[i] }
            if nonlinear {
                newtonStep(y: &y, anchor: work, data: f, weight2: weight2, mu: mu, iterations: p.newtonIterations,
                           tolerance: Float(p.newtonTolerance))
            } else {
                // Linear: minimise (W²/2)(y − f)² + (μ/2)(y − a)² in closed form.
                for i in 0..<n { y[i] = (weight2[i] * f[i] + mu * work[i]) / (weight2[i] + mu) }
            }
            for i in 0..<n { v[i] = work[i] - y[i] }
            for i in 0..<n { gx[i] = zx[i] - ux[i]; gy[i] = zy[i] - uy[i]; gz[i] = zz[i] - uz[i]; work[i] = y[i] - v[i] }
            work.withUnsafeBufferPointer { w in dataSpectrum.withUnsafeMutableBufferPointer { grid.fft.forward(w, into: $0) } }
            grid.gradientAdjoint(gx, gy, gz, into: &work)
            work.withUnsafeBufferPointer { w in spectrum.withUnsafeMutableBufferPointer { grid.fft.forward(w, into: $0) } }
            for i in 0..<h {
                spectrum[i] = (spectrum[i] * rho + dataSpectrum[i] * (mu * grid.dipole[i])) * inverse[i]
                dataSpectrum[i] = spectrum[i] * grid.dipole[i]
            }
            spectrum.withUnsafeMutableBufferPointer { s in chi.withUnsafeMutableBufferPointer { grid.fft.inverse(s, into: $0) } }
            dataSpectrum.withUnsafeMutableBufferPointer { s in dChi.withUnsafeMutableBufferPointer { grid.fft.inverse(s, into: $0) } }

            var change = 0.0, size = 0.0
            for i in 0..<n {
                let d = Double(chi[i] - previous[i]); change += d * d; size += Double(chi[i]) * Double(chi[i])
            }
            let relative = size > 0 ? (change / size).squareRoot() : .infinity
            grid.gradient(chi, into: &gx, &gy, &gz)
            for i in 0..<n {
                let vx = gx[i] + ux[i], vy = gy[i] + uy[i], vz = gz[i] + uz[i]
                zx[i] = softThreshold(vx, threshold); zy[i] = softThreshold(vy, threshold); zz[i] = softThreshold(vz, threshold)
                ux[i] = vx - zx[i]; uy[i] = vy - zy[i]; uz[i] = vz - zz[i]
            }
            if recordObjective {
                var data = 0.0, tv = 0.0
                for i in 0..<n {
                    let r = Double(dChi[i] - f[i])
                    data += Double(weight2[i]) * (nonlinear ? 1 - Double.cos(r) : r * r / 2)
                    tv += Double(abs(gx[i]) + abs(gy[i]) + abs(gz[i]))
                }
                log.objective.append(data + Double(lambda) * tv)
            }
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        return (grid.crop(chi).masked(by: mask).map { $0 / scale }, log)
    }

    /// y ← argmin W²(1 − cos(y − f)) + (μ/2)(y − a)² per voxel, Newton from y = a (see the y-step).
    private func newtonStep(y: inout [Float], anchor: [Float], data: [Float], weight2: [Float], mu: Float,
                            iterations: Int, tolerance: Float) {
        y.withUnsafeMutableBufferPointer { yb in anchor.withUnsafeBufferPointer { ab in data.withUnsafeBufferPointer { fb in
          weight2.withUnsafeBufferPointer { wb in
            let yp = SendablePointer(yb.baseAddress!)
            let ap = SendablePointer(UnsafeMutablePointer(mutating: ab.baseAddress!))
            let fp = SendablePointer(UnsafeMutablePointer(mutating: fb.baseAddress!))
            let wp = SendablePointer(UnsafeMutablePointer(mutating: wb.baseAddress!))
            parallelFor(0..<yb.count) { range in
                for i in range {
                    let a = ap[i], f = fp[i], w = wp[i]
                    var value = a
                    for _ in 0..<iterations {
                        let r = value - f
                        let delta = (w * Float.sin(r) + mu * (value - a)) / max(w * Float.cos(r) + mu, mu / 2)
                        value -= delta
                        if abs(delta) <= tolerance * abs(value) { break }
                    }
                    yp[i] = value
                }
            }
          }
        } } }
    }

    private func objective(_ chi: [Float], f: [Float], grid: InversionGrid, lambda: Double,
                           gx: [Float], gy: [Float], gz: [Float]) -> Double {
        let spectrum = grid.fft.forward(chi)
        let dChi = grid.fft.inverse(zip(spectrum, grid.dipole).map { $0 * $1 })
        var data = 0.0, tv = 0.0
        for i in 0..<chi.count {
            let r = Double(dChi[i] - f[i]); data += r * r
            tv += Double(abs(gx[i]) + abs(gy[i]) + abs(gz[i]))
        }
        return 0.5 * data + lambda * tv
    }
}

/// sign(v)·max(|v| − t, 0).
@inline(__always) func softThreshold(_ v: Float, _ t: Float) -> Float {
    v > t ? v - t : (v < -t ? v + t : 0)
}

/// What an iterative method did: iterations run, convergence, and per-iteration figures.
public struct IterationLog: Sendable, Codable, Equatable {
    /// Iterations run.
    public var iterations = 0
    /// Whether the tolerance was met before the cap.
    public var converged = false
    /// ‖xᵏ⁺¹ − xᵏ‖/‖xᵏ⁺¹‖ per iteration.
    public var relativeChange: [Double] = []
    /// The method's objective per iteration, when recorded.
    public var objective: [Double] = []
    /// An empty log.
    public init() {}
}
