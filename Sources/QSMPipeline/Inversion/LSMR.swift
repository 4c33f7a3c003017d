import QSMCore

/// LSMR for min‖Ax − b‖ with A real and diagonal, acting on interleaved complex k-space vectors.
///
/// Fong DC-L, Saunders M. "LSMR: An iterative algorithm for sparse least-squares problems."
/// SIAM J Sci Comput 2011;33:2950–2971. doi:10.1137/10079687X. Undamped (λ = 0); the iteration count
/// is the regulariser (RTS step 1 runs 4 iterations, QSM.md §7.7).
///
/// With A = diag(d), every LSMR vector is a polynomial in A applied to b: u = P(s)·b and
/// v = d·Q(s)·b with s = d². So the textbook recurrences run on the polynomials' coefficients
/// (Chebyshev basis on [0, max s]): A maps Q to s·Q, Aᵀ maps P to P, and inner products are
/// integrals against the measure μ = Σ_k |b_k|² δ(s − s_k), taken from its Chebyshev moments.
/// Two passes over the vectors (the moments, then x = d·X(s)·b) instead of two per iteration, all
/// in Double; the iterates agree with a Double vector LSMR to ~1e-13 up to 100 iterations.
package enum DiagonalLSMR {
    /// x after `iterations` steps, starting from 0; `diagonal[k]` multiplies entries 2k and 2k+1.
    package static func solve(diagonal: [Float], rhs b: [Float], iterations: Int) -> [Float] {
        precondition(b.count == 2 * diagonal.count)
        return [Float](unsafeUninitializedCapacity: b.count) { x, initialized in
            diagonal.withUnsafeBufferPointer { d in b.withUnsafeBufferPointer { rhs in
                solve(diagonal: d, rhs: rhs, iterations: iterations, into: x)
            } }
            initialized = b.count
        }
    }

    /// As `solve(diagonal:rhs:iterations:)`, writing x into `x` (overwritten; it may be `rhs`'s
    /// memory: each entry is read before it is written). Sums run over fixed chunks added in chunk
    /// order, so x does not depend on the thread count.
    static func solve(diagonal: UnsafeBufferPointer<Float>, rhs: UnsafeBufferPointer<Float>, iterations: Int,
                      into x: UnsafeMutableBufferPointer<Float>) {
        precondition(rhs.count == 2 * diagonal.count && x.count == rhs.count && iterations >= 1)
        guard let range = VoxelLoop.finiteRange(diagonal) else { preconditionFailure("LSMR: the diagonal is not finite") }
        let extreme = diagonal.isEmpty ? 0 : Double(max(-range.low, range.high)), largest = extreme * extreme
        // The highest moment an inner product below needs is 2·iterations + 1.
        let measure = largest > 0 ? SpectralMeasure(diagonal: diagonal, rhs: rhs, largest: largest, degree: 2 * iterations + 2) : nil
        let solution = measure.map { coefficients(of: $0, iterations: iterations) } ?? []
        evaluate(solution, largest: largest, diagonal: diagonal, rhs: rhs, into: x)
    }

    /// Chebyshev coefficients of X with x = d·X(s)·b: the textbook LSMR (λ = 0) on polynomials.
    static func coefficients(of measure: SpectralMeasure, iterations: Int) -> [Double] {
        // A norm this small (relative to the operator's) is rounding: the Krylov space is exhausted.
        let negligible = 1e-20 * measure.largest
        // u = b/β; ṽ = Aᵀu; α = ‖ṽ‖ (‖dQb‖² = ∫ s·Q² dμ).
        var beta = measure.moments[0].squareRoot()
        guard beta > 0 else { return [] }
        var u = [1 / beta], v = u
        var alpha = measure.inner(measure.timesS(v), v).squareRoot()
        guard alpha * alpha > negligible else { return [] }
        v = scaled(v, 1 / alpha)
        var h = v, hBar: [Double] = [], x: [Double] = []
        var alphaBar = alpha, zetaBar = alpha * beta, rho = 1.0, rhoBar = 1.0, cBar = 1.0, sBar = 0.0
        for _ in 0..<iterations {
            // Bidiagonalisation: βu = Av − αu, αv = Aᵀu − βv.
            u = combined(measure.timesS(v), 1, u, -alpha)
            beta = measure.inner(u, u).squareRoot()
            guard beta * beta > negligible else { break }
            u = scaled(u, 1 / beta)
            v = combined(u, 1, v, -beta)
            let alphaSquared = measure.inner(measure.timesS(v), v)
            alpha = alphaSquared > negligible ? alphaSquared.squareRoot() : 0
            if alpha > 0 { v = scaled(v, 1 / alpha) }
            // Rotations.
            let rhoOld = rho
            rho = (alphaBar * alphaBar + beta * beta).squareRoot()
            let c = alphaBar / rho, s = beta / rho
            let theta = s * alpha
            alphaBar = c * alpha
            let rhoBarOld = rhoBar, thetaBar = sBar * rho, cRho = cBar * rho
            rhoBar = (cRho * cRho + theta * theta).squareRoot()
            cBar = cRho / rhoBar
            sBar = theta / rhoBar
            let zeta = cBar * zetaBar
            zetaBar = -sBar * zetaBar
            // h̄ = h − (θ̄ρ/(ρ_old ρ̄_old)) h̄, x += (ζ/(ρρ̄)) h̄, h = v − (θ/ρ) h.
            hBar = combined(h, 1, hBar, -thetaBar * rho / (rhoOld * rhoBarOld))
            x = combined(x, 1, hBar, zeta / (rho * rhoBar))
            h = combined(v, 1, h, -theta / rho)
            if alpha == 0 { break }
        }
        return x
    }

    /// x = d·X(s)·b, X by Clenshaw's recurrence in t = 2s/max s − 1 (X empty: x = 0).
    private static func evaluate(_ coefficients: [Double], largest: Double, diagonal: UnsafeBufferPointer<Float>,
                                 rhs: UnsafeBufferPointer<Float>, into x: UnsafeMutableBufferPointer<Float>) {
        let d = ReadPointer(diagonal.baseAddress!), b = ReadPointer(rhs.baseAddress!), out = SendablePointer(x.baseAddress!)
        guard !coefficients.isEmpty else {
            parallelFor(0..<x.count) { r in (out.base + r.lowerBound).update(repeating: 0, count: r.count) }
            return
        }
        let scale = 2 / largest, count = coefficients.count
        coefficients.withUnsafeBufferPointer { cb in
            let a = ReadPointer(cb.baseAddress!)
            parallelFor(0..<diagonal.count) { r in
                var i = r.lowerBound
                while i + 4 <= r.upperBound {
                    let dk = SIMD4<Double>(Double(d[i]), Double(d[i + 1]), Double(d[i + 2]), Double(d[i + 3]))
                    let g = gain(a.base, count: count, scale: scale, dk)
                    for lane in 0..<4 {
                        let k = i + lane, gain = g[lane]
                        out[2 * k] = Float(gain * Double(b[2 * k])); out[2 * k + 1] = Float(gain * Double(b[2 * k + 1]))
                    }
                    i += 4
                }
                for k in i..<r.upperBound {
                    let g = gain(a.base, count: count, scale: scale, SIMD4(repeating: Double(d[k])))[0]
                    out[2 * k] = Float(g * Double(b[2 * k])); out[2 * k + 1] = Float(g * Double(b[2 * k + 1]))
                }
            }
        }
    }

    /// d·X(d²) for four d, X given by `count` Chebyshev coefficients in t = s·`scale` − 1
    /// (`scale` = 2/max s), by Clenshaw's recurrence.
    @inline(__always)
    static func gain(_ a: UnsafePointer<Double>, count: Int, scale: Double, _ d: SIMD4<Double>) -> SIMD4<Double> {
        let t = d * d * scale - 1, twoT = t + t
        var next = SIMD4<Double>(), nextButOne = SIMD4<Double>()
        for j in stride(from: count - 1, through: 1, by: -1) {
            let current = twoT * next - nextButOne + a[j]
            nextButOne = next; next = current
        }
        return d * (t * next - nextButOne + a[0])
    }

    private static func scaled(_ p: [Double], _ a: Double) -> [Double] { p.map { $0 * a } }

    /// a·p + b·q.
    private static func combined(_ p: [Double], _ a: Double, _ q: [Double], _ b: Double) -> [Double] {
        (0..<max(p.count, q.count)).map { j in (j < p.count ? a * p[j] : 0) + (j < q.count ? b * q[j] : 0) }
    }
}

/// The measure μ = Σ_k |b_k|² δ(s − s_k), s = d², through its Chebyshev moments
/// m_j = Σ_k |b_k|² T_j(t_k), t = 2s/max s − 1, j ≤ `degree`.
struct SpectralMeasure {
    /// m_0 … m_degree.
    let moments: [Double]
    /// max s.
    let largest: Double

    init(diagonal: UnsafeBufferPointer<Float>, rhs: UnsafeBufferPointer<Float>, largest: Double, degree: Int) {
        self.largest = largest
        let count = diagonal.count, terms = degree + 1
        let chunks = max(1, min(64, count / 4096)), scale = 2 / largest
        var partial = [Double](repeating: 0, count: chunks * terms)
        let d = ReadPointer(diagonal.baseAddress!), b = ReadPointer(rhs.baseAddress!)
        partial.withUnsafeMutableBufferPointer { pb in
            let pp = SendablePointer(pb.baseAddress!)
            parallelFor(0..<chunks) { cs in
                withUnsafeTemporaryAllocation(of: SIMD4<Double>.self, capacity: terms) { sums in
                    for c in cs {
                        sums.initialize(repeating: .zero)
                        let r = count * c / chunks..<count * (c + 1) / chunks
                        func add(_ t: SIMD4<Double>, _ w: SIMD4<Double>) { Self.accumulate(t, w, into: sums.baseAddress!, terms: terms) }
                        var k = r.lowerBound
                        while k + 4 <= r.upperBound {
                            let dk = SIMD4<Double>(Double(d[k]), Double(d[k + 1]), Double(d[k + 2]), Double(d[k + 3]))
                            var w = SIMD4<Double>()
                            for lane in 0..<4 {
                                let re = Double(b[2 * (k + lane)]), im = Double(b[2 * (k + lane) + 1])
                                w[lane] = re * re + im * im
                            }
                            add(dk * dk * scale - 1, w)
                            k += 4
                        }
                        for k in k..<r.upperBound {
                            let dk = Double(d[k]), re = Double(b[2 * k]), im = Double(b[2 * k + 1])
                            add(SIMD4(dk * dk * scale - 1, 0, 0, 0), SIMD4(re * re + im * im, 0, 0, 0))
                        }
                        for j in 0..<terms { pp[c * terms + j] = sums[j].sum() }
                    }
                }
            }
        }
        moments = (0..<terms).map { j in (0..<chunks).reduce(0.0) { $0 + partial[$1 * terms + j] } }
    }

    /// sums[j] += w·T_j(t) for j < `terms`, four points at a time, by the three-term recurrence
    /// (linear, so it carries the weight w).
    @inline(__always)
    static func accumulate(_ t: SIMD4<Double>, _ w: SIMD4<Double>, into sums: UnsafeMutablePointer<SIMD4<Double>>, terms: Int) {
        var previous = w, current = w * t
        sums[0] += previous
        if terms > 1 { sums[1] += current }
        let twoT = t + t
        for j in 2..<max(2, terms) {
            let next = twoT * current - previous
            sums[j] += next
            previous = current; current = next
        }
    }

    /// ∫ P·R dμ for Chebyshev coefficients, by T_j·T_l = (T_{j+l} + T_{|j−l|})/2.
    func inner(_ p: [Double], _ r: [Double]) -> Double {
        precondition(p.count + r.count - 2 < moments.count, "moment degree too low")
        var total = 0.0
        for (j, a) in p.enumerated() where a != 0 {
            for (l, c) in r.enumerated() { total += a * c * 0.5 * (moments[j + l] + moments[abs(j - l)]) }
        }
        return total
    }

    /// Coefficients of s·P(s): s = (max s)(t + 1)/2, t·T_0 = T_1, t·T_j = (T_{j+1} + T_{j−1})/2.
    func timesS(_ p: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: p.count + 1)
        for (j, a) in p.enumerated() {
            out[j] += a
            if j == 0 { out[1] += a } else { out[j + 1] += a / 2; out[j - 1] += a / 2 }
        }
        return out.map { $0 * largest / 2 }
    }
}
