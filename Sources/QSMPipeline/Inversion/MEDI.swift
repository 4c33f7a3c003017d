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
public struct MEDI: Sendable {
    /// Parameters; defaults from the MEDI toolbox `parse_QSM_input.m` (recent version).
    public struct Parameters: Codable, Equatable, Sendable {
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
        /// Radians of phase per ppm of field (2π·γ̄·B0·ΔTE), > 0. Default: 2π·42.5775·3·0.005 (3 T, ΔTE 5 ms).
        public var phaseScale = 2 * Double.pi * 42.5775 * 3 * 0.005
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = SIMD3<Int>(0, 0, 0)
        /// The defaults.
        public init() {}
    }

    /// Registry name.
    public static let name = "medi"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm); `magnitude` defines edges, `noise` (field SD) the data weights.
    public func invert(
        localField: Volume<Float>, mask: Mask, b0Direction: SIMD3<Double>,
        magnitude: Volume<Float>? = nil, noise: Volume<Float>? = nil
    ) throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try ParameterCheck.positive(p.lambda, "inversion.lambda")
        guard p.edgeFraction > 0, p.edgeFraction < 3 else {
            throw .invalidParameter("inversion.edgeFraction", "\(p.edgeFraction) is outside (0, 3)")
        }
        try ParameterCheck.atLeastOne(p.maxIterations, "inversion.maxIterations")
        try ParameterCheck.inOpenUnit(p.tolerance, "inversion.tolerance")
        try ParameterCheck.atLeastOne(p.cgMaxIterations, "inversion.cgMaxIterations")
        try ParameterCheck.inOpenUnit(p.cgTolerance, "inversion.cgTolerance")
        try ParameterCheck.positive(p.epsilon, "inversion.epsilon")
        try ParameterCheck.positive(p.phaseScale, "inversion.phaseScale")
        try localField.grid.requireMatches(mask.grid, "local field", "mask")
        if let magnitude { try localField.grid.requireMatches(magnitude.grid, "local field", "magnitude") }
        if let noise { try localField.grid.requireMatches(noise.grid, "local field", "noise map") }
        guard mask.insideCount > 0 else { throw .invalidFile("mask", "no voxel is inside the mask") }

        let grid = try InversionGrid(grid: localField.grid, padding: p.padding, b0Direction: b0Direction)
        let n = grid.count
        let scale = Float(p.phaseScale)
        let phase = grid.pad(localField.masked(by: mask).voxels.map { $0 * scale })
        let weight2 = grid.pad(dataWeights(mask: mask, noise: noise)).map { $0 * $0 }
        let (edgeX, edgeY, edgeZ) = edgeMask(grid: grid, mask: mask, magnitude: magnitude)
        let lambda2 = Float(2 * p.lambda), epsilon = Float(p.epsilon)

        var chi = [Float](repeating: 0, count: n)
        var gx = chi, gy = chi, gz = chi, vx = chi, vy = chi, vz = chi
        var dChi = chi, b = chi, scratch = chi, wave = chi
        var spectrum = [Complex<Float>](repeating: .zero, count: grid.halfCount)
        var log = IterationLog()

        for iteration in 1...p.maxIterations {
            // Linearisation point: V = 1/√(|M_G∇χ|² + ε) per component, w² = W²cos-free (|w|² = W²).
            grid.gradient(chi, into: &gx, &gy, &gz)
            for i in 0..<n {
                let ax = edgeX[i] * gx[i], ay = edgeY[i] * gy[i], az = edgeZ[i] * gz[i]
                vx[i] = edgeX[i] * edgeX[i] / (ax * ax + epsilon).squareRoot()
                vy[i] = edgeY[i] * edgeY[i] / (ay * ay + epsilon).squareRoot()
                vz[i] = edgeZ[i] * edgeZ[i] / (az * az + epsilon).squareRoot()
            }
            applyDipole(grid, chi, into: &dChi, spectrum: &spectrum)
            // b = ∇ᵀ(V∇χ) + 2λ·D(W² sin(Dχ − φ)).
            for i in 0..<n { scratch[i] = weight2[i] * Float.sin(dChi[i] - phase[i]) }
            applyDipole(grid, scratch, into: &b, spectrum: &spectrum)
            for i in 0..<n { gx[i] *= vx[i]; gy[i] *= vy[i]; gz[i] *= vz[i] }
            grid.gradientAdjoint(gx, gy, gz, into: &wave)
            for i in 0..<n { b[i] = -(wave[i] + lambda2 * b[i]) }

            // A·x = ∇ᵀ(V∇x) + 2λ·D(W²·Dx).
            let operatorA: (_ x: [Float], _ out: inout [Float]) -> Void = { x, out in
                grid.gradient(x, into: &gx, &gy, &gz)
                for i in 0..<n { gx[i] *= vx[i]; gy[i] *= vy[i]; gz[i] *= vz[i] }
                grid.gradientAdjoint(gx, gy, gz, into: &wave)
                applyDipole(grid, x, into: &scratch, spectrum: &spectrum)
                for i in 0..<n { scratch[i] *= weight2[i] }
                applyDipole(grid, scratch, into: &out, spectrum: &spectrum)
                for i in 0..<n { out[i] = wave[i] + lambda2 * out[i] }
            }
            let step = ConjugateGradient.solve(operatorA, rhs: b, tolerance: p.cgTolerance,
                                               maxIterations: p.cgMaxIterations)
            var change = 0.0, size = 0.0
            for i in 0..<n {
                chi[i] += step[i]
                change += Double(step[i]) * Double(step[i]); size += Double(chi[i]) * Double(chi[i])
            }
            let relative = size > 0 ? (change / size).squareRoot() : 0
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
        }
        return (grid.crop(chi).masked(by: mask).map { $0 / scale }, log)
    }

    /// W = mask/σ normalised to mean 1 over the mask (`dataterm_mask` mode 1), or the mask.
    private func dataWeights(mask: Mask, noise: Volume<Float>?) -> [Float] {
        guard let noise else { return mask.voxels.map { $0 ? 1 : 0 } }
        var w = [Float](repeating: 0, count: mask.voxels.count)
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
        var gx = [Float](repeating: 0, count: n), gy = gx, gz = gx
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

/// Conjugate gradients for a symmetric positive (semi-)definite operator, from x = 0.
///
/// Hestenes MR, Stiefel E. J Res Natl Bur Stand 1952;49:409–436. Stops when ‖r‖ ≤ tol·‖b‖.
enum ConjugateGradient {
    static func solve(
        _ apply: (_ x: [Float], _ out: inout [Float]) -> Void, rhs b: [Float], tolerance: Double, maxIterations: Int
    ) -> [Float] {
        let n = b.count
        var x = [Float](repeating: 0, count: n), r = b, d = b, q = x
        var rr = dot(r, r)
        let stop = tolerance * tolerance * rr
        guard rr > 0 else { return x }
        for _ in 0..<maxIterations {
            apply(d, &q)
            let dq = dot(d, q)
            guard dq > 0 else { break }
            let alpha = Float(rr / dq)
            for i in 0..<n { x[i] += alpha * d[i]; r[i] -= alpha * q[i] }
            let rrNew = dot(r, r)
            if rrNew <= stop { break }
            let beta = Float(rrNew / rr)
            for i in 0..<n { d[i] = r[i] + beta * d[i] }
            rr = rrNew
        }
        return x
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return s
    }
}
