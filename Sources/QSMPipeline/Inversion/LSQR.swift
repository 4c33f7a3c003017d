import QSMCore

/// Early-stopped LSQR on the weighted dipole model: min ‖W(F⁻¹DFχ − f)‖², stopping on ‖r‖/‖b‖ < tol.
///
/// Paige CC, Saunders MA. ACM TOMS 1982;8:43–71. doi:10.1145/355984.355989. This is step 1 of
/// iLSQR (Li W, Wang N, Yu F, Han H, Cao W, Romero R, et al. NeuroImage 2015;108:111–122.
/// doi:10.1016/j.neuroimage.2014.12.043) with W = mask (or given weights) — early stopping is the
/// regulariser; iLSQR's FastQSM estimate and streaking removal (its steps 2–4) are not applied.
/// Defaults from QSM.rs `IlsqrParams` (tol 0.01, 50 iterations). Four FFTs per iteration.
public struct LSQR: IterativeInversion {
    /// Parameters; defaults from QSM.rs `IlsqrParams`.
    public struct Parameters: MethodParameters {
        /// Relative-residual stopping tolerance in (0, 1). Default 0.01.
        public var tolerance = 0.01
        /// Iteration cap ≥ 1. Default 50.
        public var maxIterations = 50
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖r‖/‖b‖ falls below this. Default 0.01 (QSM.rs IlsqrParams)."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "Iteration cap. Default 50 (QSM.rs IlsqrParams)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0.")]
        }
    }

    /// Registry name.
    public static let name = "lsqr"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Early-stopped LSQR on the masked dipole model (iLSQR step 1; Li et al. 2015)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm); `weight` (e.g. normalised magnitude) defaults to the mask.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        try invert(localField: localField, mask: mask, context: context, weight: nil)
    }

    /// As `invert`, with data weights W (e.g. normalised magnitude); nil uses the mask.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, weight: Volume<Float>?)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")
        if let weight { try localField.grid.requireMatches(weight.grid, "local field", "weight") }

        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count
        let inside = weight?.voxels ?? [Float](repeating: 1, count: mask.grid.count)
        let w = grid.pad(inside, mask: mask.voxels)
        var spectrum = grid.spectrumBuffer()
        var scratch = VoxelLoop.zeros(n)
        // B = W·A and Bᵀ = A·W, with A = F⁻¹DF symmetric: one fused sweep each, W applied as planes
        // are loaded or stored, planes where W = 0 not transformed.
        let dipole = SpectralFilter(dipoleOf: grid), weighted = dipole.planes(of: w)
        func applyB(_ x: [Float], _ out: inout [Float]) {
            dipole.apply(x, into: &out, spectrum: &spectrum, outputWeight: w, outputPlanes: weighted)
        }
        func applyBT(_ x: [Float], _ out: inout [Float]) {
            dipole.apply(x, into: &out, spectrum: &spectrum, inputWeight: w, inputPlanes: weighted)
        }
        // u ← a·W·A·x − c·u with ‖u‖².
        func updateB(_ x: [Float], _ u: inout [Float], _ a: Float, _ c: Float) -> Double {
            dipole.apply(x, into: &scratch, spectrum: &spectrum, outputWeight: w, outputPlanes: weighted)
            return u.withUnsafeMutableBufferPointer { ub in scratch.withUnsafeBufferPointer { sb in
                let up = SendablePointer(ub.baseAddress!), wax = ReadPointer(sb.baseAddress!)
                return chunkedSums(count: ub.count) { r in
                    var sum = 0.0
                    for i in r { let value = a * wax[i] - c * up[i]; up[i] = value; sum += Double(value) * Double(value) }
                    return SIMD4(sum, 0, 0, 0)
                }[0]
            } }
        }

        var b = grid.pad(localField.voxels, mask: mask.voxels)
        VectorPass.multiply(&b, by: w)
        let (x, log) = LSQRSolver.solve(rhs: b, unknowns: n, tolerance: p.tolerance, maxIterations: p.maxIterations,
                                        applyA: applyB, applyAT: applyBT, updateA: updateB)
        return (grid.crop(consuming: x, mask: mask), log)
    }
}

/// LSQR (Paige & Saunders, ACM TOMS 1982, doi:10.1145/355984.355989) for min ‖Ax − b‖ with A given
/// as a pair of operators; starts from x = 0 and stops when ‖r‖/‖b‖ < tolerance or after
/// `maxIterations`. The log records ‖Δx‖/‖x‖ and ‖r‖² (= φ̄², monotone in LSQR) per iteration.
enum LSQRSolver {
    /// `applyA(x, &out)` sets out ← A·x (out has b's count); `applyAT(y, &out)` sets out ← Aᵀ·y
    /// (out has `unknowns` entries). Old contents of `out` are garbage. `updateA(v, &u, a, c)`, when
    /// given, sets u ← a·A·v − c·u and returns ‖u‖² (Double, fixed order) in one pass of its own.
    static func solve(rhs b: [Float], unknowns n: Int, tolerance: Double, maxIterations: Int,
                      applyA: ([Float], inout [Float]) -> Void,
                      applyAT: ([Float], inout [Float]) -> Void,
                      updateA: (([Float], inout [Float], Float, Float) -> Double)? = nil) -> (x: [Float], log: IterationLog) {
        let m = b.count
        // u and v are kept unnormalised with their scale factors (u = su·uRaw, v = sv·vRaw): the
        // operators are linear, so the factors ride along into the next update pass and no separate
        // normalisation pass is needed (two passes over the vectors per iteration fewer).
        var uRaw = b
        var beta = norm(uRaw)
        var x = VoxelLoop.zeros(n)
        var log = IterationLog()
        guard beta > 0 else { return (x, log) }
        var su = 1 / beta
        var vRaw = x
        applyAT(uRaw, &vRaw)
        var alpha = su * norm(vRaw)
        guard alpha > 0 else { return (x, log) }
        var sv = su / alpha
        var direction = vRaw
        VectorPass.scale(&direction, by: Float(sv))
        var nextU = updateA == nil ? VoxelLoop.zeros(m) : [], nextV = x
        let bNorm = beta
        var phiBar = beta, rhoBar = alpha
        for iteration in 1...maxIterations {
            // u ← (A·v − α·u)/β and v ← (Aᵀ·u − β·v)/α, each one parallel pass returning its norm
            // (fixed chunks, so the same for any thread count).
            if let updateA {
                beta = updateA(vRaw, &uRaw, Float(sv), Float(alpha * su)).squareRoot()
            } else {
                applyA(vRaw, &nextU)
                beta = VectorPass.combine(&uRaw, from: nextU, factor: Float(sv), minus: Float(alpha * su)).squareRoot()
            }
            su = beta > 0 ? 1 / beta : 1
            applyAT(uRaw, &nextV)
            alpha = VectorPass.combine(&vRaw, from: nextV, factor: Float(su), minus: Float(beta * sv)).squareRoot()
            sv = alpha > 0 ? 1 / alpha : 1

            let rho = (rhoBar * rhoBar + beta * beta).squareRoot()
            let c = rhoBar / rho, s = beta / rho
            let theta = s * alpha
            rhoBar = -c * alpha
            let phi = c * phiBar
            phiBar *= s
            let xStep = Float(phi / rho), wStep = Float(-theta / rho)
            let vScale = Float(sv)
            let sums = x.withUnsafeMutableBufferPointer { xb in direction.withUnsafeMutableBufferPointer { db in
                vRaw.withUnsafeBufferPointer { vb in
                    let xp = SendablePointer(xb.baseAddress!), d = SendablePointer(db.baseAddress!), vp = ReadPointer(vb.baseAddress!)
                    return chunkedSums(count: xb.count) { r in
                        var change = 0.0, size = 0.0
                        for i in r {
                            let dx = xStep * d[i], value = xp[i] + dx
                            xp[i] = value; change += Double(dx) * Double(dx); size += Double(value) * Double(value)
                            d[i] = vScale * vp[i] + wStep * d[i]
                        }
                        return SIMD4(change, size, 0, 0)
                    }
                }
            } }
            let size = sums[1].squareRoot()
            log.relativeChange.append(size > 0 ? sums[0].squareRoot() / size : 0)
            log.objective.append(phiBar * phiBar)
            log.iterations = iteration
            if phiBar / bNorm < tolerance || alpha == 0 || beta == 0 { log.converged = true; break }
        }
        return (x, log)
    }
}
