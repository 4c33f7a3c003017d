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
        let threshold = lambda / rho, normalization = 1 / Float(n)
        // The padded field itself is only needed for the objective; F[f] pads it plane by plane.
        let f = recordObjective ? grid.pad(localField.voxels, mask: mask.voxels) : []
        // Constant parts of the χ-step, D·F[f]/(D² + ρL) and ρ/(D² + ρL), both carrying the 1/N of
        // the inverse FFT (which then skips its own scaling pass), 0 where D² + ρL = 0: formed
        // block-ordered (`BlockOrder`, read in streaming order by every χ-step) as F[f]'s column
        // pass finishes each block.
        let capacity = BlockOrder.capacity(halfCount: h, depth: grid.shape.z)
        var constant = [Complex<Float>](unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
        var gain = uninitializedArray(count: capacity) { _ in }
        var spectrum = grid.spectrumBuffer()
        constant.withUnsafeMutableBufferPointer { cb in gain.withUnsafeMutableBufferPointer { gb in
            grid.dipole.withUnsafeBufferPointer { db in grid.laplacian.withUnsafeBufferPointer { lb in
                let c = SendablePointer(cb.baseAddress!), g = SendablePointer(gb.baseAddress!)
                let d = ReadPointer(db.baseAddress!), l = ReadPointer(lb.baseAddress!)
                grid.forwardPadded(localField.voxels, mask: mask.voxels, into: &spectrum) { columns in
                    let base = BlockOrder.base(columns, capacity: capacity)
                    for z in 0..<columns.depth {
                        for q in 0..<columns.count {
                            let i = columns.index(q, z), at = base + z * columns.stride + q
                            let di = d[i], a = di * di + rho * l[i], fHat = columns.values[z * columns.stride + q]
                            if a > 0 { c[at] = fHat * (di / a * normalization); g[at] = rho / a * normalization } else { c[at] = .zero; g[at] = 0 }
                        }
                    }
                }
            } }
        } }

        // All buffers live outside the loop; per iteration: one fused sweep for the χ-step (∇ᵀ(z − u)
        // loaded as planes, the system applied to each block of k-space columns, χ stored as planes),
        // and one fused pass for the change of χ, ∇χ, the shrinkage, the dual step and the next ∇ᵀ(z − u).
        var chi = VoxelLoop.zeros(n), previous = VoxelLoop.zeros(n), work = VoxelLoop.zeros(n)
        var split = TVSplit(count: n)
        var log = IterationLog()
        let planeSize = grid.shape.x * grid.shape.y
        for iteration in 1...p.maxIterations {
            swap(&chi, &previous)
            // χ-step: F⁻¹[constant + gain·F[∇ᵀ(z − u)]]; `work` holds ∇ᵀ(z − u) from the last shrink.
            // In the first step z − u = 0: no forward transform, χ = F⁻¹[constant].
            let first = iteration == 1
            spectrum.withUnsafeMutableBufferPointer { sb in chi.withUnsafeMutableBufferPointer { xb in
                work.withUnsafeBufferPointer { wb in constant.withUnsafeBufferPointer { cb in gain.withUnsafeBufferPointer { gb in
                    let out = SendablePointer(xb.baseAddress!), w = ReadPointer(wb.baseAddress!)
                    let c = ReadPointer(cb.baseAddress!), g = ReadPointer(gb.baseAddress!)
                    let product: @Sendable (SpectralColumns) -> Void = { columns in
                        Self.applySystem(columns, constant: c, gain: g, capacity: capacity, first: first)
                    }
                    let store: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void = { z, plane in
                        (out.base + z * planeSize).update(from: plane.baseAddress!, count: planeSize)
                    }
                    if first {
                        grid.fft.inverse(inPlace: sb, normalized: false, product: product, store: store)
                    } else {
                        grid.fft.filter(spectrum: sb, normalized: false, load: { z, plane in
                            plane.baseAddress!.update(from: w.base + z * planeSize, count: planeSize)
                        }, product: product, store: store)
                    }
                } } }
            } }
            // z- and u-steps, fused with the change of χ.
            let sums = split.shrink(grid, chi: chi, previous: previous, threshold: threshold, measureTV: recordObjective,
                                    adjoint: &work)
            let relative = sums[1] > 0 ? (sums[0] / sums[1]).squareRoot() : 0
            if recordObjective {
                log.objective.append(objective(chi, f: f, grid: grid, lambda: Double(lambda), tv: sums[2]))
            }
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        // The crop is one parallel pass into `previous`'s storage (moving χ down in place is a serial
        // 46 MB copy at 256×256×176, a fresh array costs its page faults).
        return (grid.crop(chi, mask: mask, reusing: consume previous), log)
    }

    /// One block of the χ-step: s ← constant + gain·s (s = 0 when `first`), constant and gain block-ordered.
    @inline(__always)
    private static func applySystem(_ columns: SpectralColumns, constant: ReadPointer<Complex<Float>>, gain: ReadPointer<Float>,
                                    capacity: Int, first: Bool) {
        let base = BlockOrder.base(columns, capacity: capacity)
        for z in 0..<columns.depth {
            let row = columns.values + z * columns.stride, at = base + z * columns.stride
            // Four complex values (eight Floats) at a time, the gains duplicated per real/imaginary pair;
            // the same arithmetic as the scalar tail.
            let values = SendablePointer(UnsafeMutableRawPointer(row).assumingMemoryBound(to: Float.self))
            let c = ReadPointer(UnsafeRawPointer(constant.base + at).assumingMemoryBound(to: Float.self))
            let g = gain.base + at
            var q = 0
            while q + 4 <= columns.count {
                if first {
                    values.setVector(c.vector(at: 2 * q), at: 2 * q)
                } else {
                    let k = SIMD8<Float>(g[q], g[q], g[q + 1], g[q + 1], g[q + 2], g[q + 2], g[q + 3], g[q + 3])
                    values.setVector(c.vector(at: 2 * q) + values.vector(at: 2 * q) * k, at: 2 * q)
                }
                q += 4
            }
            for q in q..<columns.count {
                let k = g[q], v = first ? Complex<Float>.zero : row[q], ci = constant[at + q]
                row[q] = Complex(ci.real + v.real * k, ci.imaginary + v.imaginary * k)
            }
        }
    }

    /// ADMM with the second split y = Dχ: the nonlinear term, or the linear one with data weights.
    private func invertSplit(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        let nonlinear = p.dataTerm == .nonlinear
        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count, h = grid.halfCount
        let scale = nonlinear ? Float(phaseScale(context)) : 1
        let weight2 = p.dataWeighting == .mask ? grid.pad([Float](repeating: 1, count: mask.grid.count), mask: mask.voxels)
            : [Float](repeating: 1, count: n)
        // χ and the field in radians; λ·s keeps λ's meaning (ppm) of the linear term, ρ and μ carry over.
        let lambda = Float(p.lambda) * scale, rho = Float(p.rho > 0 ? p.rho : 100 * p.lambda), mu = Float(p.mu)
        let threshold = lambda / rho, normalization = 1 / Float(n)
        var f = grid.pad(localField.voxels, mask: mask.voxels)
        if scale != 1 { VectorPass.scale(&f, by: scale) }

        // χ-step: X̂ = (ρ·F[∇ᵀ(z − u)] + μ·D·F[y − v]) / (ρL + μD²); 1/N folded into the inverse.
        var inverse = [Float](repeating: 0, count: h)
        inverse.withUnsafeMutableBufferPointer { ib in grid.dipole.withUnsafeBufferPointer { db in grid.laplacian.withUnsafeBufferPointer { lb in
            let out = SendablePointer(ib.baseAddress!), d = ReadPointer(db.baseAddress!), l = ReadPointer(lb.baseAddress!)
            parallelFor(0..<h) { r in
                for i in r { let a = mu * d[i] * d[i] + rho * l[i]; if a > 0 { out[i] = normalization / a } }
            }
        } } }
        var chi = [Float](repeating: 0, count: n), previous = chi
        var v = chi, dChi = chi, work = chi, adjoint = chi
        var split = TVSplit(count: n)
        var spectrum = grid.spectrumBuffer(), dataSpectrum = grid.spectrumBuffer()
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
            // The same pass takes the dual step v ← a − y and forms y − v for the χ-step.
            Self.dataStep(dChi: dChi, data: f, weight2: weight2, mu: mu, nonlinear: nonlinear,
                          iterations: p.newtonIterations, tolerance: Float(p.newtonTolerance), dual: &v, into: &work)
            grid.forward(work, into: &dataSpectrum)
            grid.forward(adjoint, into: &spectrum)       // ∇ᵀ(z − u) from the last shrink (0 at first)
            spectrum.withUnsafeMutableBufferPointer { sb in dataSpectrum.withUnsafeMutableBufferPointer { qb in
                inverse.withUnsafeBufferPointer { ib in grid.dipole.withUnsafeBufferPointer { db in
                    let s = SendablePointer(sb.baseAddress!), q = SendablePointer(qb.baseAddress!)
                    let k = ReadPointer(ib.baseAddress!), d = ReadPointer(db.baseAddress!)
                    parallelFor(0..<h) { r in
                        for i in r {
                            let x = (s[i] * rho + q[i] * (mu * d[i])) * k[i]
                            s[i] = x; q[i] = x * d[i]
                        }
                    }
                } }
            } }
            grid.rawInverse(&spectrum, into: &chi)
            grid.rawInverse(&dataSpectrum, into: &dChi)

            let sums = split.shrink(grid, chi: chi, previous: previous, threshold: threshold, measureTV: recordObjective,
                                    adjoint: &adjoint)
            let relative = sums[1] > 0 ? (sums[0] / sums[1]).squareRoot() : .infinity
            if recordObjective {
                let data = dChi.withUnsafeBufferPointer { db in f.withUnsafeBufferPointer { fb in weight2.withUnsafeBufferPointer { wb in
                    let d = ReadPointer(db.baseAddress!), target = ReadPointer(fb.baseAddress!), w = ReadPointer(wb.baseAddress!)
                    return chunkedSums(count: db.count) { range in
                        var t = 0.0
                        for i in range {
                            let r = Double(d[i] - target[i])
                            t += Double(w[i]) * (nonlinear ? 1 - Double.cos(r) : r * r / 2)
                        }
                        return SIMD4(t, 0, 0, 0)
                    }[0]
                } } }
                log.objective.append(data + Double(lambda) * sums[2])
            }
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        var out = grid.crop(consuming: consume chi, mask: mask)
        if scale != 1 { out.withMutableVoxels { x in for i in x.indices { x[i] /= scale } } }
        return (out, log)
    }

    /// One pass per voxel: a = Dχ + v; y = argmin W²(1 − cos(y − f)) + (μ/2)(y − a)² by Newton from
    /// y = a (nonlinear) or (W²f + μa)/(W² + μ) (linear); v ← a − y; work ← y − v.
    private static func dataStep(dChi: [Float], data: [Float], weight2: [Float], mu: Float, nonlinear: Bool,
                                 iterations: Int, tolerance: Float, dual: inout [Float], into work: inout [Float]) {
        work.withUnsafeMutableBufferPointer { ob in dual.withUnsafeMutableBufferPointer { vb in
            dChi.withUnsafeBufferPointer { db in data.withUnsafeBufferPointer { fb in weight2.withUnsafeBufferPointer { wb in
                let out = SendablePointer(ob.baseAddress!), v = SendablePointer(vb.baseAddress!)
                let d = ReadPointer(db.baseAddress!), fp = ReadPointer(fb.baseAddress!), wp = ReadPointer(wb.baseAddress!)
                parallelFor(0..<ob.count) { range in
                    for i in range {
                        let a = d[i] + v[i], f = fp[i], w = wp[i]
                        var value: Float
                        if nonlinear {
                            value = a
                            for _ in 0..<iterations {
                                let r = value - f
                                let delta = (w * Float.sin(r) + mu * (value - a)) / max(w * Float.cos(r) + mu, mu / 2)
                                value -= delta
                                if abs(delta) <= tolerance * abs(value) { break }
                            }
                        } else {
                            value = (w * f + mu * a) / (w + mu)
                        }
                        let residual = a - value
                        v[i] = residual; out[i] = value - residual
                    }
                }
            } } }
        } }
    }

    /// ½‖Dχ − f‖² + λ·tv (two FFTs; only when the objective is recorded).
    private func objective(_ chi: [Float], f: [Float], grid: InversionGrid, lambda: Double, tv: Double) -> Double {
        var dChi = [Float](repeating: 0, count: chi.count), spectrum = grid.spectrumBuffer()
        grid.applyDipole(chi, into: &dChi, spectrum: &spectrum)
        let data = dChi.withUnsafeBufferPointer { db in f.withUnsafeBufferPointer { fb in
            let d = ReadPointer(db.baseAddress!), target = ReadPointer(fb.baseAddress!)
            return chunkedSums(count: db.count) { range in
                var t = 0.0
                for i in range { let r = Double(d[i] - target[i]); t += r * r }
                return SIMD4(t, 0, 0, 0)
            }[0]
        } }
        return 0.5 * data + lambda * tv
    }
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
