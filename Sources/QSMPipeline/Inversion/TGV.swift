import QSMCore

/// Single-step TGV-QSM: χ from the Laplacian of (unwrapped or wrapped) phase, with TGV regularisation.
///
/// Langkammer C, Bredies K, Poser BA, Barth M, Reishofer G, Fan AP, et al. NeuroImage
/// 2015;111:622–630. doi:10.1016/j.neuroimage.2015.02.041. Saddle problem (QSM.md §7.10):
///
///     min_{χ,φ,w} α₁‖∇χ − w‖₁ + α₀‖ε(w)‖₁ + ½‖φ‖²_{M}   s.t.  ((1/3)∇² − ∂²_b̂)χ − ∇²φ = ∇²φ₀ on M₀
///
/// solved by Chambolle–Pock primal–dual steps with finite-difference stencils only (no FFTs).
/// ∇²φ₀ is computed wrap-insensitively, cos φ·∇² sin φ − sin φ·∇² cos φ (Schofield & Zhu 2003),
/// so harmonic background fields vanish from the data; φ absorbs what the dipole model cannot.
/// M is the mask eroded `erosions` times and M₀ once more. Cross-checked in structure against
/// QSM.rs `tgv_qsm`; the dipole stencil here is the central-difference one (no SVD fit).
public struct TGV: IterativeInversion {
    /// Parameters; defaults from QSM.rs `TgvParams` as listed in QSM.md §7.10.
    public struct Parameters: MethodParameters {
        /// Weight α₁ > 0 of ‖∇χ − w‖₁ (χ in radians of phase). Default 0.0005.
        public var alpha1 = 0.0005
        /// Weight α₀ > 0 of ‖ε(w)‖₁. Default 0.0015.
        public var alpha0 = 0.0015
        /// Iteration cap ≥ 1. Default 1000.
        public var maxIterations = 1000
        /// Relative change of χ over 100 iterations below which iteration stops, ≥ 0. Default 1e-5.
        public var tolerance = 1e-5
        /// Mask erosions (6-connected) before fitting, ≥ 0. Default 3.
        public var erosions = 3
        /// Multiplier > 0 of the χ, w, p, q step sizes. Default 3.
        public var stepSize = 3.0
        /// Echo time (s) at which α₀, α₁ apply: the field becomes phase 2π·γ̄·B0·TE. Default 0.020 (QSM.rs).
        public var echoTime = 0.020
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("alpha1", \.alpha1, in: .positive, "Weight of ‖∇χ − w‖₁ (phase units). Default 0.0005 (QSM.rs TgvParams, QSM.md §7.10)."),
             .real("alpha0", \.alpha0, in: .positive, "Weight of ‖ε(w)‖₁. Default 0.0015 (QSM.rs TgvParams, QSM.md §7.10)."),
             .integer("maxIterations", \.maxIterations, in: 1...1_000_000, "Primal–dual iterations. Default 1000 (QSM.rs)."),
             .real("tolerance", \.tolerance, in: .nonNegative, "Relative change of χ over 100 iterations to stop. Default 1e-5 (QSM.rs)."),
             .integer("erosions", \.erosions, in: 0...100, "Mask erosions before fitting. Default 3 (QSM.rs)."),
             .real("stepSize", \.stepSize, in: .positive, "Step multiplier for χ, w, p, q. Default 3 (QSM.rs)."),
             .real("echoTime", \.echoTime, in: Interval(0, 1, lowerClosed: false, upperClosed: false), "TE, s, at which the α apply. Default 0.020 (QSM.rs).")]
        }
    }

    /// Registry name.
    public static let name = "tgv"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Single-step TGV-QSM from the phase Laplacian (Langkammer et al. 2015)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Radians of phase per ppm at `echoTime`, the context's B0 and γ̄.
    public func radiansPerPPM(_ context: StageContext) -> Double {
        2 * Double.pi * context.conventions.gyromagneticRatio * context.fieldStrength * parameters.echoTime
    }

    /// χ (ppm, zero outside the eroded mask) from a local or total field (ppm).
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        try InputCheck.field(localField, mask: mask, name: "local field")
        let scale = Float(radiansPerPPM(context))
        return try invert(phase: localField.map { $0 * scale }, mask: mask, context: context)
    }

    /// χ (ppm, zero outside the eroded mask) from phase (rad, wrapped or not) at `echoTime`.
    public func invert(phase: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError)
        -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try context.validate()
        try phase.grid.requireMatches(mask.grid, "phase", "mask")
        let b0Direction = context.b0Direction

        var fitMask = mask.voxels
        for _ in 0..<p.erosions { fitMask = StencilGrid.erode(fitMask, shape: mask.shape) }
        let innerMask = StencilGrid.erode(fitMask, shape: mask.shape)
        guard innerMask.contains(true) else {
            throw .invalidFile("mask", "nothing is left after \(p.erosions + 1) erosions")
        }
        let box = StencilGrid(boundingBoxOf: innerMask, shape: mask.shape, margin: 2, voxelSize: mask.grid.voxelSize)
        let m = box.extract(fitMask.map { $0 ? Float(1) : 0 })
        let m0 = box.extract(innerMask.map { $0 ? Float(1) : 0 })
        var data = box.phaseLaplacian(box.extract(phase.voxels))
        // Only the mean-free part is determined (harmonic and constant terms are invisible).
        var sum = 0.0, count = 0.0
        for i in 0..<box.count where m0[i] > 0 { sum += Double(data[i]); count += 1 }
        let mean = Float(sum / count)
        for i in 0..<box.count { data[i] = m0[i] > 0 ? data[i] - mean : 0 }

        let stencil = DipoleStencil(voxelSize: box.voxelSize, b0Direction: b0Direction)
        let h = box.voxelSize
        let gradientNorm = (4 * (1 / (h.x * h.x) + 1 / (h.y * h.y) + 1 / (h.z * h.z))).squareRoot()
        let tau = Float(1 / StencilGrid.operatorNorm(gradient: gradientNorm, wave: stencil.absoluteSum))
        let sigma = tau, tauStep = tau * Float(p.stepSize), sigmaStep = sigma * Float(p.stepSize)
        let a1 = Float(p.alpha1), a0 = Float(p.alpha0)

        let n = box.count
        let zero = [Float](repeating: 0, count: n), ones = [Float](repeating: 1, count: n)
        var chi = zero, chiBar = zero, phi = zero, phiBar = zero
        var w = [zero, zero, zero], wBar = w
        var eta = zero, dualP = [zero, zero, zero], dualQ = [zero, zero, zero, zero, zero, zero]
        var t1 = zero, t2 = zero, g = [zero, zero, zero], e = dualQ, chiCheck = zero
        var log = IterationLog()
        for iteration in 1...p.maxIterations {
            // Dual steps on extrapolated primals.
            box.laplacian(phiBar, mask: m0, into: &t1)
            stencil.apply(chiBar, box: box, into: &t2)
            for i in 0..<n where m0[i] > 0 { eta[i] += sigma * (t2[i] - t1[i] - data[i]) }
            box.gradient(chiBar, into: &g)
            for i in 0..<n {
                var px = dualP[0][i] + sigmaStep * (m0[i] * g[0][i] - m[i] * wBar[0][i])
                var py = dualP[1][i] + sigmaStep * (m0[i] * g[1][i] - m[i] * wBar[1][i])
                var pz = dualP[2][i] + sigmaStep * (m0[i] * g[2][i] - m[i] * wBar[2][i])
                let norm = (px * px + py * py + pz * pz).squareRoot()
                if norm > a1 { let s = a1 / norm; px *= s; py *= s; pz *= s }
                dualP[0][i] = px; dualP[1][i] = py; dualP[2][i] = pz
            }
            box.symmetrizedGradient(wBar, into: &e)
            for i in 0..<n where m0[i] > 0 {
                var q = (0..<6).map { dualQ[$0][i] + sigmaStep * e[$0][i] }
                let norm = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + 2 * (q[3] * q[3] + q[4] * q[4] + q[5] * q[5])).squareRoot()
                if norm > a0 { let s = a0 / norm; for c in 0..<6 { q[c] *= s } }
                for c in 0..<6 { dualQ[c][i] = q[c] }
            }

            // Primal steps, then extrapolation x̄ = 2x⁺ − x.
            // Adjoint of φ ↦ M₀∇²φ is η ↦ ∇²(M₀η) (the Neumann Laplacian is symmetric).
            for i in 0..<n { t1[i] = m0[i] * eta[i] }
            box.laplacian(t1, mask: ones, into: &t2)
            for i in 0..<n {
                let updated = (phi[i] + tau * t2[i]) / (1 + tau * m[i])
                phiBar[i] = 2 * updated - phi[i]; phi[i] = updated
            }
            for c in 0..<3 { for i in 0..<n { g[c][i] = m0[i] * dualP[c][i] } }
            box.divergence(g, into: &t1)
            for i in 0..<n { t2[i] = m0[i] * eta[i] }
            var wave = zero
            stencil.apply(t2, box: box, into: &wave)
            for i in 0..<n {
                let updated = chi[i] + tauStep * (t1[i] - wave[i])
                chiBar[i] = 2 * updated - chi[i]; chi[i] = updated
            }
            for c in 0..<6 { for i in 0..<n { e[c][i] = m0[i] * dualQ[c][i] } }
            box.symmetrizedDivergence(e, into: &g)
            for c in 0..<3 {
                for i in 0..<n {
                    let updated = w[c][i] + tauStep * m[i] * (dualP[c][i] + g[c][i])
                    wBar[c][i] = 2 * updated - w[c][i]; w[c][i] = updated
                }
            }
            log.iterations = iteration
            if iteration % 100 == 0 {
                var change = 0.0, size = 0.0
                for i in 0..<n where m0[i] > 0 {
                    let d = Double(chi[i] - chiCheck[i]); change += d * d; size += Double(chi[i]) * Double(chi[i])
                }
                let relative = size > 0 ? (change / size).squareRoot() : 1
                log.relativeChange.append(relative)
                chiCheck = chi
                if relative < p.tolerance { log.converged = true; break }
            }
        }
        let ppm = Float(1 / radiansPerPPM(context))
        var out = Volume<Float>(zeros: mask.grid)
        box.insert(chi.enumerated().map { m[$0.offset] > 0 ? $0.element * ppm : 0 }, into: &out.voxels)
        return (out, log)
    }
}

/// (1/3)∇² − ∂²_b̂ as a 27-point central-difference stencil (applied inside a box, zero outside).
struct DipoleStencil {
    /// Coefficients indexed [dz+1][dy+1][dx+1].
    var weights = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: 3), count: 3), count: 3)

    init(voxelSize: SIMD3<Double>, b0Direction: SIMD3<Double>) {
        let b = b0Direction / (b0Direction * b0Direction).sum().squareRoot()
        let inv = 1 / voxelSize
        var center = 0.0
        for axis in 0..<3 {
            let h2 = inv[axis] * inv[axis]
            let c = h2 / 3 - b[axis] * b[axis] * h2
            var o = [1, 1, 1]
            o[axis] = 0; weights[o[2]][o[1]][o[0]] += c
            o[axis] = 2; weights[o[2]][o[1]][o[0]] += c
            center -= 2 * c
        }
        // −2 b_i b_j ∂_i∂_j with ∂_i∂_j f ≈ [f(+,+) − f(+,−) − f(−,+) + f(−,−)]/(4Δ_iΔ_j).
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            let c = -2 * b[i] * b[j] * inv[i] * inv[j] / 4
            for (si, sj, sign) in [(0, 0, 1.0), (2, 2, 1.0), (0, 2, -1.0), (2, 0, -1.0)] {
                var o = [1, 1, 1]
                o[i] = si; o[j] = sj
                weights[o[2]][o[1]][o[0]] += sign * c
            }
        }
        weights[1][1][1] = center
    }

    var absoluteSum: Double { weights.joined().joined().reduce(0) { $0 + abs($1) } }

    /// out = stencil ⊛ x inside the box (neighbours outside count as 0).
    func apply(_ x: [Float], box: StencilGrid, into out: inout [Float]) {
        let (nx, ny, nz) = (box.shape.x, box.shape.y, box.shape.z)
        var taps: [(Int, Int, Int, Float)] = []
        for dz in -1...1 { for dy in -1...1 { for dx in -1...1 where weights[dz + 1][dy + 1][dx + 1] != 0 {
            taps.append((dx, dy, dz, Float(weights[dz + 1][dy + 1][dx + 1])))
        } } }
        let stencilTaps = taps
        let o = SendablePointer(out.withUnsafeMutableBufferPointer { $0.baseAddress! })
        x.withUnsafeBufferPointer { xb in
            let src = SendablePointer(UnsafeMutablePointer(mutating: xb.baseAddress!))
            parallelFor(0..<nz) { zs in
                for z in zs { for y in 0..<ny { for xi in 0..<nx {
                    var s: Float = 0
                    for (dx, dy, dz, c) in stencilTaps {
                        let (a, b, cz) = (xi + dx, y + dy, z + dz)
                        if a >= 0 && a < nx && b >= 0 && b < ny && cz >= 0 && cz < nz { s += c * src[a + nx * (b + ny * cz)] }
                    }
                    o[xi + nx * (y + ny * z)] = s
                } } }
            }
        }
    }
}

/// A box-shaped sub-grid with the finite-difference operators TGV needs (Neumann boundaries).
struct StencilGrid {
    let fullShape: SIMD3<Int>
    let origin: SIMD3<Int>
    let shape: SIMD3<Int>
    let voxelSize: SIMD3<Double>
    var count: Int { shape.x * shape.y * shape.z }

    init(boundingBoxOf mask: [Bool], shape full: SIMD3<Int>, margin: Int, voxelSize: SIMD3<Double>) {
        var lo = full, hi = SIMD3<Int>(repeating: -1)
        for z in 0..<full.z { for y in 0..<full.y { for x in 0..<full.x where mask[x + full.x * (y + full.y * z)] {
            lo = pointwiseMin(lo, SIMD3(x, y, z)); hi = pointwiseMax(hi, SIMD3(x, y, z))
        } } }
        lo = pointwiseMax(lo &- margin, .zero)
        hi = pointwiseMin(hi &+ margin, full &- 1)
        fullShape = full; origin = lo; shape = hi &- lo &+ 1; self.voxelSize = voxelSize
    }

    func extract(_ values: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            out[x + shape.x * (y + shape.y * z)] =
                values[(x + origin.x) + fullShape.x * ((y + origin.y) + fullShape.y * (z + origin.z))]
        } } }
        return out
    }

    func insert(_ values: [Float], into full: inout [Float]) {
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            full[(x + origin.x) + fullShape.x * ((y + origin.y) + fullShape.y * (z + origin.z))] =
                values[x + shape.x * (y + shape.y * z)]
        } } }
    }

    static func erode(_ mask: [Bool], shape: SIMD3<Int>) -> [Bool] {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        var out = [Bool](repeating: false, count: mask.count)
        for z in 1..<max(1, nz - 1) { for y in 1..<max(1, ny - 1) { for x in 1..<max(1, nx - 1) {
            let i = x + nx * (y + ny * z)
            out[i] = mask[i] && mask[i - 1] && mask[i + 1] && mask[i - nx] && mask[i + nx]
                && mask[i - nx * ny] && mask[i + nx * ny]
        } } }
        return out
    }

    /// Largest singular value bound of the primal–dual operator from its blocks' norms.
    static func operatorNorm(gradient g: Double, wave: Double) -> Double {
        // Block norms: p ← (∇χ, w), q ← ε(w), η ← (∇²φ, wave χ); ‖∇²‖ ≤ g².
        let m: [[Double]] = [[0, g, 1], [0, 0, g], [g * g, wave, 0]]
        var v = [1.0, 1, 1]
        var lambda = 0.0
        for _ in 0..<50 {
            let mv = (0..<3).map { r in (0..<3).reduce(0.0) { $0 + m[r][$1] * v[$1] } }
            let mtmv = (0..<3).map { c in (0..<3).reduce(0.0) { $0 + m[$1][c] * mv[$1] } }
            lambda = (mtmv.reduce(0) { $0 + $1 * $1 }).squareRoot()
            v = mtmv.map { $0 / lambda }
        }
        return lambda.squareRoot()
    }

    private var inverseSpacing: SIMD3<Float> { SIMD3(Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z)) }
    private var strides: SIMD3<Int> { SIMD3(1, shape.x, shape.x * shape.y) }

    /// Forward differences, zero on the last slice of each axis.
    func gradient(_ u: [Float], into g: inout [[Float]]) {
        let h = inverseSpacing, s = strides
        for axis in 0..<3 {
            for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
                let i = x + shape.x * (y + shape.y * z)
                let at = SIMD3(x, y, z)[axis]
                g[axis][i] = at + 1 < shape[axis] ? (u[i + s[axis]] - u[i]) * h[axis] : 0
            } } }
        }
    }

    /// −gradientᵀ: (div p)_n = p_n·[n < N−1] − p_{n−1}·[n > 0] per axis.
    func divergence(_ p: [[Float]], into out: inout [Float]) {
        let h = inverseSpacing, s = strides
        for i in 0..<count { out[i] = 0 }
        for axis in 0..<3 {
            for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
                let i = x + shape.x * (y + shape.y * z)
                let at = SIMD3(x, y, z)[axis]
                var d: Float = 0
                if at + 1 < shape[axis] { d += p[axis][i] }
                if at > 0 { d -= p[axis][i - s[axis]] }
                out[i] += d * h[axis]
            } } }
        }
    }

    /// Backward difference δ⁻ = −(forward)ᵀ of `u` along `axis`.
    private func backward(_ u: [Float], axis: Int) -> [Float] {
        let h = inverseSpacing[axis], st = strides[axis]
        var out = [Float](repeating: 0, count: count)
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            let i = x + shape.x * (y + shape.y * z)
            let at = SIMD3(x, y, z)[axis]
            var d: Float = 0
            if at + 1 < shape[axis] { d += u[i] }
            if at > 0 { d -= u[i - st] }
            out[i] = d * h
        } } }
        return out
    }

    /// Forward difference δ⁺ of `u` along `axis` (zero on the last slice).
    private func forward(_ u: [Float], axis: Int) -> [Float] {
        let h = inverseSpacing[axis], st = strides[axis]
        var out = [Float](repeating: 0, count: count)
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            let i = x + shape.x * (y + shape.y * z)
            out[i] = SIMD3(x, y, z)[axis] + 1 < shape[axis] ? (u[i + st] - u[i]) * h : 0
        } } }
        return out
    }

    /// ε(w) = ½(δ⁻_j w_i + δ⁻_i w_j), components (xx, yy, zz, xy, xz, yz).
    func symmetrizedGradient(_ w: [[Float]], into e: inout [[Float]]) {
        let pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
        for (c, (i, j)) in pairs.enumerated() {
            let a = backward(w[i], axis: j)
            if i == j { e[c] = a; continue }
            let b = backward(w[j], axis: i)
            for k in 0..<count { e[c][k] = 0.5 * (a[k] + b[k]) }
        }
    }

    /// −εᵀ(q): (div q)_i = Σ_j δ⁺_j q_ij (off-diagonals counted in both rows).
    func symmetrizedDivergence(_ q: [[Float]], into out: inout [[Float]]) {
        let index = [[0, 3, 4], [3, 1, 5], [4, 5, 2]]
        for i in 0..<3 {
            var acc = [Float](repeating: 0, count: count)
            for j in 0..<3 {
                let d = forward(q[index[i][j]], axis: j)
                for k in 0..<count { acc[k] += d[k] }
            }
            out[i] = acc
        }
    }

    /// 7-point Laplacian with Neumann boundaries, zero outside `mask` (self-adjoint on the mask).
    func laplacian(_ u: [Float], mask: [Float], into out: inout [Float]) {
        let h = inverseSpacing, s = strides
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            let i = x + shape.x * (y + shape.y * z)
            guard mask[i] > 0 else { out[i] = 0; continue }
            let at = SIMD3(x, y, z)
            var sum: Float = 0
            for axis in 0..<3 {
                let c = u[i]
                let minus = at[axis] > 0 ? u[i - s[axis]] : c
                let plus = at[axis] + 1 < shape[axis] ? u[i + s[axis]] : c
                sum += (minus - 2 * c + plus) * h[axis] * h[axis]
            }
            out[i] = sum
        } } }
    }

    /// ∇²φ from wrapped phase: cos φ·∇² sin φ − sin φ·∇² cos φ (Neumann Laplacian).
    func phaseLaplacian(_ phase: [Float]) -> [Float] {
        let ones = [Float](repeating: 1, count: count)
        let s = phase.map { Float.sin($0) }, c = phase.map { Float.cos($0) }
        var ls = ones, lc = ones
        laplacian(s, mask: ones, into: &ls)
        laplacian(c, mask: ones, into: &lc)
        return (0..<count).map { c[$0] * ls[$0] - s[$0] * lc[$0] }
    }
}
