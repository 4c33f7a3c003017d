import QSMCore

/// Rapid two-step inversion: LSMR on the well-conditioned k-space, then TV on the ill-conditioned cone.
///
/// Kames C, Wiggermann V, Rauscher A. NeuroImage 2018;167:276–283.
/// doi:10.1016/j.neuroimage.2017.11.018. Steps as QSM.jl `rts` (QSM.md §7.7): (1) `lsmrIterations`
/// of LSMR on D·X = F[f], masked → χ₁; (2) min (μ/2)‖P(Fχ − Fχ₁)‖² + ‖∇χ‖₁ with P = 1{|D| > δ},
/// by ADMM (z = ∇χ, threshold 1/ρ), ρ ← γρ when the primal residual exceeds τ× its last value.
public struct RTS: IterativeInversion {
    /// Parameters; defaults from QSM.jl `rts` (identical in QSM.rs).
    public struct Parameters: MethodParameters {
        /// Threshold δ on |D| separating well- from ill-conditioned k-space, in (0, 2/3).
        public var threshold = 0.15
        /// Data-consistency weight μ > 0.
        public var mu = 1e5
        /// Initial ADMM penalty ρ > 0.
        public var rho = 10.0
        /// Relative-change stopping tolerance in (0, 1).
        public var tolerance = 1e-2
        /// ADMM iteration cap ≥ 1.
        public var maxIterations = 20
        /// LSMR iterations in step 1, ≥ 1.
        public var lsmrIterations = 4
        /// ρ grows when the primal residual exceeds τ times its previous value; τ in (0, 1).
        public var residualRatio = 0.7
        /// Factor γ > 1 by which ρ grows.
        public var rhoGrowth = 5.0
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("threshold", \.threshold, in: Interval(0, 2.0 / 3, lowerClosed: false, upperClosed: false, text: "(0, 2/3)"),
                   "|D| above which k-space is well conditioned. Default 0.15 (QSM.jl rts)."),
             .real("mu", \.mu, in: .positive, "Data-consistency weight μ. Default 1e5 (QSM.jl rts)."),
             .real("rho", \.rho, in: .positive, "Initial ADMM penalty ρ. Default 10 (QSM.jl rts)."),
             .real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖Δχ‖/‖χ‖ falls below this. Default 1e-2 (QSM.jl rts)."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "ADMM iteration cap. Default 20 (QSM.jl rts)."),
             .integer("lsmrIterations", \.lsmrIterations, in: 1...1000, "LSMR iterations of step 1. Default 4 (QSM.jl rts)."),
             .real("residualRatio", \.residualRatio, in: .openUnit, "ρ grows when the primal residual exceeds this × its last value. Default 0.7 (QSM.jl rts)."),
             .real("rhoGrowth", \.rhoGrowth, in: Interval(1, .infinity, lowerClosed: false, upperClosed: false), "Factor γ by which ρ grows. Default 5 (QSM.jl rts)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0 (QSM.jl).")]
        }
    }

    /// Registry name.
    public static let name = "rts"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Rapid two-step: LSMR then TV on the ill-conditioned cone (Kames et al. 2018)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm), zero outside `mask`.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")

        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count, h = grid.halfCount
        let maskPadded = grid.pad(mask.map { $0 ? Float(1) : 0 }.voxels)

        // Step 1: LSMR in k-space on the diagonal operator D.
        let fHat = grid.fft.forward(grid.pad(localField.masked(by: mask).voxels))
        let interleaved = fHat.flatMap { [$0.real, $0.imaginary] }
        let solution = DiagonalLSMR.solve(diagonal: grid.dipole, rhs: interleaved, iterations: p.lsmrIterations)
        var spectrum = (0..<h).map { Complex(solution[2 * $0], solution[2 * $0 + 1]) }
        var chi = grid.fft.inverse(spectrum)
        for i in 0..<n { chi[i] *= maskPadded[i] }

        // Step 2: ADMM on the ill-conditioned cone.
        let delta = Float(p.threshold), mu = Float(p.mu)
        let wellConditioned = grid.dipole.map { abs($0) > delta ? mu : 0 }
        var rho = Float(p.rho)
        let chi1Hat = grid.fft.forward(chi)
        var constant = [Complex<Float>](repeating: .zero, count: h)
        var gain = [Float](repeating: 0, count: h)
        for i in 0..<h {
            let a = wellConditioned[i] + rho * grid.laplacian[i]
            if a > 0 { constant[i] = chi1Hat[i] * (wellConditioned[i] / a); gain[i] = rho / a }
        }
        var dualX = [Float](repeating: 0, count: n), dualY = dualX, dualZ = dualX
        var vx = dualX, vy = dualX, vz = dualX, dx = dualX, dy = dualX, dz = dualX
        // Start from z − u = 0 and χ⁰ = 0 (as QSM.rs): the first χ-step is then the well-conditioned
        // part of χ₁, and the convergence test compares against it. Starting from z = ∇χ₁ (QSM.jl)
        // reproduces χ₁ minus its mean in the first step, so the 1e-2 test can stop before any TV step.
        var previous = [Float](repeating: 0, count: n), work = previous
        chi = previous
        var residual = Double.infinity
        var log = IterationLog()
        for iteration in 1...p.maxIterations {
            swap(&chi, &previous)
            grid.gradientAdjoint(vx, vy, vz, into: &work)
            work.withUnsafeBufferPointer { w in spectrum.withUnsafeMutableBufferPointer { grid.fft.forward(w, into: $0) } }
            for i in 0..<h { spectrum[i] = constant[i] + spectrum[i] * gain[i] }
            spectrum.withUnsafeMutableBufferPointer { s in chi.withUnsafeMutableBufferPointer { grid.fft.inverse(s, into: $0) } }
            var change = 0.0, size = 0.0
            for i in 0..<n {
                let d = Double(chi[i] - previous[i]); change += d * d; size += Double(chi[i]) * Double(chi[i])
            }
            let relative = size > 0 ? (change / size).squareRoot() : 0
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
            if iteration == p.maxIterations { break }

            grid.gradient(chi, into: &dx, &dy, &dz)
            let t = 1 / rho
            var primal = 0.0
            for i in 0..<n {
                var a = dualX[i] + dx[i], y = softThreshold(a, t)
                dualX[i] = a - y; vx[i] = y - dualX[i]; let rx = dx[i] - y
                a = dualY[i] + dy[i]; y = softThreshold(a, t)
                dualY[i] = a - y; vy[i] = y - dualY[i]; let ry = dy[i] - y
                a = dualZ[i] + dz[i]; y = softThreshold(a, t)
                dualZ[i] = a - y; vz[i] = y - dualZ[i]; let rz = dz[i] - y
                primal += Double(rx * rx + ry * ry + rz * rz).squareRoot()
            }
            if primal > p.residualRatio * residual {
                let growth = Float(p.rhoGrowth)
                let oldRho = rho
                rho *= growth
                for i in 0..<h where gain[i] > 0 {
                    let a = wellConditioned[i] + rho * grid.laplacian[i]
                    constant[i] = constant[i] * ((wellConditioned[i] + oldRho * grid.laplacian[i]) / a)
                    gain[i] = rho / a
                }
                // Scaled duals shrink by γ when ρ grows by γ; v = z − u must follow.
                for i in 0..<n {
                    let zx = vx[i] + dualX[i], zy = vy[i] + dualY[i], zz = vz[i] + dualZ[i]
                    dualX[i] /= growth; dualY[i] /= growth; dualZ[i] /= growth
                    vx[i] = zx - dualX[i]; vy[i] = zy - dualY[i]; vz[i] = zz - dualZ[i]
                }
            }
            residual = primal
        }
        return (grid.crop(chi).masked(by: mask), log)
    }
}
