import QSMCore

/// Nonlinear dipole inversion: gradient descent on ‖W(e^{iDχ} − e^{if})‖² + α‖χ‖².
///
/// Polak D, Chatnuntawech I, Yoon J, Iyer SS, Milovic C, Lee J, et al. NMR Biomed 2020;33:e4271.
/// doi:10.1002/nbm.4271. Update χ ← χ − τ[Dᴴ(W² sin(Dχ − f)) + αχ] as QSM.rs `ndi` (QSM.md §7.8);
/// early stopping is the main regulariser. The field is scaled by `phaseScale` (rad per ppm) before
/// the periodic data term and χ is scaled back.
public struct NDI: IterativeInversion {
    /// Parameters; defaults from QSM.rs `NdiParams` (ported from FANSI `ndi.m`).
    public struct Parameters: MethodParameters {
        /// Step size τ > 0. Default QSM.rs.
        public var stepSize = 2.0
        /// Tikhonov weight α ≥ 0. Default QSM.rs.
        public var alpha = 1e-5
        /// Iteration cap ≥ 1. Default QSM.rs.
        public var maxIterations = 200
        /// Stop early when ‖χᵏ⁺¹ − χᵏ‖/‖χᵏ⁺¹‖ falls below this (0 disables). Default 0 (QSM.rs runs all).
        public var tolerance = 0.0
        /// Radians of phase per ppm of field, > 0. Default 1 (QSM.rs `phase_scale`).
        public var phaseScale = 1.0
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("stepSize", \.stepSize, in: .positive, "Gradient step τ. Default 2 (QSM.rs NdiParams)."),
             .real("alpha", \.alpha, in: .nonNegative, "Tikhonov weight α. Default 1e-5 (QSM.rs NdiParams)."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "Iterations (early stopping regularises). Default 200 (QSM.rs)."),
             .real("tolerance", \.tolerance, in: .nonNegative, "Stop when ‖Δχ‖/‖χ‖ falls below this; 0 runs all iterations. Default 0 (QSM.rs)."),
             .real("phaseScale", \.phaseScale, in: .positive, "Radians per ppm in the periodic data term. Default 1 (QSM.rs phase_scale)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0.")]
        }
    }

    /// Registry name.
    public static let name = "ndi"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Nonlinear dipole inversion, gradient descent (Polak et al. 2020)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm); `weight` (e.g. normalised magnitude) defaults to the mask.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        try invert(localField: localField, mask: mask, context: context, weight: nil, recordObjective: recordObjective)
    }

    /// As `invert`, with data weights W (e.g. normalised magnitude); nil uses the mask.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, weight: Volume<Float>?,
                       recordObjective: Bool = false) throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")
        if let weight { try localField.grid.requireMatches(weight.grid, "local field", "weight") }

        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count
        let scale = Float(p.phaseScale)
        let f = grid.pad(localField.masked(by: mask).voxels.map { $0 * scale })
        let w = grid.pad((weight ?? mask.map { $0 ? Float(1) : 0 }).masked(by: mask).voxels)
        let w2 = w.map { $0 * $0 }
        let tau = Float(p.stepSize), alpha = Float(p.alpha)

        var chi = [Float](repeating: 0, count: n), dChi = chi, residual = chi, update = chi
        var spectrum = [Complex<Float>](repeating: .zero, count: grid.halfCount)
        var log = IterationLog()
        for iteration in 1...p.maxIterations {
            applyDipole(grid, chi, into: &dChi, spectrum: &spectrum)
            var objective = 0.0
            for i in 0..<n {
                let r = dChi[i] - f[i]
                residual[i] = w2[i] * Float.sin(r)
                if recordObjective {
                    // |e^{ia} − e^{ib}|² = 2 − 2cos(a − b).
                    objective += Double(w2[i]) * (2 - 2 * Double.cos(Double(r))) + Double(alpha) * Double(chi[i] * chi[i])
                }
            }
            if recordObjective { log.objective.append(objective) }
            applyDipole(grid, residual, into: &update, spectrum: &spectrum)
            var change = 0.0, size = 0.0
            for i in 0..<n {
                let step = tau * (update[i] + alpha * chi[i])
                chi[i] -= step
                change += Double(step) * Double(step); size += Double(chi[i]) * Double(chi[i])
            }
            let relative = size > 0 ? (change / size).squareRoot() : 0
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        let out = grid.crop(chi).masked(by: mask).map { $0 / scale }
        return (out, log)
    }
}

/// out = F⁻¹[D·F[x]] on the grid (two FFTs).
func applyDipole(_ grid: InversionGrid, _ x: [Float], into out: inout [Float], spectrum: inout [Complex<Float>]) {
    x.withUnsafeBufferPointer { i in spectrum.withUnsafeMutableBufferPointer { grid.fft.forward(i, into: $0) } }
    for k in 0..<spectrum.count { spectrum[k] = spectrum[k] * grid.dipole[k] }
    spectrum.withUnsafeMutableBufferPointer { s in out.withUnsafeMutableBufferPointer { grid.fft.inverse(s, into: $0) } }
}
