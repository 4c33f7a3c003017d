import QSMCore

/// Total-variation inversion by ADMM with a linear data term: min ½‖Dχ − f‖² + λ‖∇χ‖₁.
///
/// Bilgic B, Fan AP, Polimeni JR, Cauley SF, Bianciardi M, Adalsteinsson E, et al. MRM
/// 2014;72:1444–1459. doi:10.1002/mrm.25029. Updates as QSM.jl `tv` (QSM.md §7.5): split z = ∇χ with
/// scaled dual u; χ-step in k-space, z-step by anisotropic soft thresholding at λ/ρ; two FFTs per
/// iteration; stop when ‖χᵏ⁺¹ − χᵏ‖/‖χᵏ⁺¹‖ < tol or after `maxIterations`.
public struct TVADMM: IterativeInversion {
    /// Parameters; defaults from QSM.jl `tv` (λ 1e-3, ρ = 100λ, tol 1e-3, 250 iterations).
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
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("lambda", \.lambda, in: .positive, "TV weight λ (fields in ppm). Default 1e-3 (QSM.jl tv)."),
             .real("rho", \.rho, in: .nonNegative, "ADMM penalty ρ; 0 means 100·λ. Default 100·λ (QSM.jl tv)."),
             .real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖Δχ‖/‖χ‖ falls below this. Default 1e-3 (QSM.jl tv)."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "Iteration cap. Default 250 (QSM.jl tv)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0 (QSM.jl).")]
        }
    }

    /// Registry name.
    public static let name = "tv"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Total variation by ADMM, linear data term (Bilgic et al. 2014; QSM.jl tv)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) and the per-iteration record (objective ½‖Dχ − f‖² + λ‖∇χ‖₁ when asked).
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")

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
