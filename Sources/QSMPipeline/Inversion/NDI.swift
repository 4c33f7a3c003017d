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
        var f = grid.pad(localField.voxels, mask: mask.voxels)
        VoxelLoop.update(&f) { _, v in v * scale }
        var w2 = grid.pad(weight?.voxels ?? [Float](repeating: 1, count: mask.grid.count), mask: mask.voxels)
        VoxelLoop.update(&w2) { _, v in v * v }
        let tau = Float(p.stepSize), alpha = Float(p.alpha)

        // All buffers live outside the loop; each iteration is two dipole products and two fused
        // parallel passes whose sums use fixed chunks (the same result for any thread count).
        var chi = VoxelLoop.zeros(n), dChi = VoxelLoop.zeros(n), residual = VoxelLoop.zeros(n), update = VoxelLoop.zeros(n)
        var spectrum = VoxelLoop.complexZeros(grid.halfCount)
        // Dχ is only read where W² ≠ 0, and the residual is 0 elsewhere: those planes are skipped.
        let dipole = SpectralFilter(dipoleOf: grid), weighted = dipole.planes(of: w2)
        var log = IterationLog()
        for iteration in 1...p.maxIterations {
            dipole.apply(chi, into: &dChi, spectrum: &spectrum, outputPlanes: weighted)
            let objective = Self.residualPass(dChi: dChi, f: f, w2: w2, chi: chi, alpha: alpha,
                                              recordObjective: recordObjective, into: &residual)
            if recordObjective { log.objective.append(objective) }
            dipole.apply(residual, into: &update, spectrum: &spectrum, inputPlanes: weighted)
            let sums = Self.descentPass(update: update, tau: tau, alpha: alpha, chi: &chi)
            let relative = sums[1] > 0 ? (sums[0] / sums[1]).squareRoot() : 0
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        var out = grid.crop(consuming: consume chi, mask: mask)
        out.withMutableVoxels { v in for i in v.indices { v[i] /= scale } }
        return (out, log)
    }

    /// residual ← W²·sin(Dχ − f); returns Σ W²(2 − 2cos(Dχ − f)) + αχ² when `recordObjective`
    /// (|e^{ia} − e^{ib}|² = 2 − 2cos(a − b)), else 0.
    private static func residualPass(dChi: [Float], f: [Float], w2: [Float], chi: [Float], alpha: Float,
                                     recordObjective: Bool, into residual: inout [Float]) -> Double {
        residual.withUnsafeMutableBufferPointer { rb in
            dChi.withUnsafeBufferPointer { db in f.withUnsafeBufferPointer { fb in
                w2.withUnsafeBufferPointer { wb in chi.withUnsafeBufferPointer { cb in
                    let out = SendablePointer(rb.baseAddress!), d = ReadPointer(db.baseAddress!)
                    let field = ReadPointer(fb.baseAddress!), w = ReadPointer(wb.baseAddress!), x = ReadPointer(cb.baseAddress!)
                    return chunkedSums(count: rb.count) { r in
                        var objective = 0.0
                        for i in r {
                            let difference = d[i] - field[i]
                            out[i] = w[i] * Float.sin(difference)
                            if recordObjective {
                                objective += Double(w[i]) * (2 - 2 * Double.cos(Double(difference)))
                                    + Double(alpha) * Double(x[i]) * Double(x[i])
                            }
                        }
                        return SIMD4(objective, 0, 0, 0)
                    }[0]
                } }
            } }
        }
    }

    /// χ ← χ − τ(update + αχ); returns (‖Δχ‖², ‖χ‖²) in lanes 0 and 1.
    private static func descentPass(update: [Float], tau: Float, alpha: Float, chi: inout [Float]) -> SIMD4<Double> {
        chi.withUnsafeMutableBufferPointer { cb in update.withUnsafeBufferPointer { ub in
            let x = SendablePointer(cb.baseAddress!), u = ReadPointer(ub.baseAddress!)
            return chunkedSums(count: cb.count) { r in
                var change = 0.0, size = 0.0
                for i in r {
                    let step = tau * (u[i] + alpha * x[i])
                    let value = x[i] - step
                    x[i] = value
                    change += Double(step) * Double(step); size += Double(value) * Double(value)
                }
                return SIMD4(change, size, 0, 0)
            }
        } }
    }
}
