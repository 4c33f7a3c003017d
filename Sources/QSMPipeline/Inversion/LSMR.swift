/// LSMR for min‖Ax − b‖ with A real and diagonal, acting on interleaved complex k-space vectors.
///
/// Fong DC-L, Saunders M. "LSMR: An iterative algorithm for sparse least-squares problems."
/// SIAM J Sci Comput 2011;33:2950–2971. doi:10.1137/10079687X. Undamped (λ = 0); the iteration count
/// is the regulariser (RTS step 1 runs 4 iterations, QSM.md §7.7).
package enum DiagonalLSMR {
    /// x after `iterations` steps, starting from 0; `diagonal[k]` multiplies entries 2k and 2k+1.
    package static func solve(diagonal: [Float], rhs b: [Float], iterations: Int) -> [Float] {
        let n = b.count
        var x = [Float](repeating: 0, count: n)
        var u = b, v = [Float](repeating: 0, count: n)
        // u ← (A·v − α·u) in place, returning its norm (A is diagonal, so no temporary is needed).
        func bidiagonalize(_ out: inout [Float], from source: [Float], minus previous: Double) -> Double {
            let a = Float(previous)
            var sum = 0.0
            for i in 0..<n {
                let value = source[i] * diagonal[i >> 1] - a * out[i]
                out[i] = value
                sum += Double(value) * Double(value)
            }
            return sum.squareRoot()
        }
        func scale(_ w: inout [Float], _ factor: Double) {
            let f = Float(factor)
            for i in 0..<n { w[i] *= f }
        }
        var beta = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        guard beta > 0 else { return x }
        scale(&u, 1 / beta)
        var alpha = bidiagonalize(&v, from: u, minus: 0)
        guard alpha > 0 else { return x }
        scale(&v, 1 / alpha)

        var alphaBar = alpha, zetaBar = alpha * beta, rho = 1.0, rhoBar = 1.0, cBar = 1.0, sBar = 0.0
        var h = v, hBar = [Float](repeating: 0, count: n)
        for _ in 0..<iterations {
            // Bidiagonalisation.
            beta = bidiagonalize(&u, from: v, minus: alpha)
            if beta > 0 { scale(&u, 1 / beta) }
            alpha = bidiagonalize(&v, from: u, minus: beta)
            if alpha > 0 { scale(&v, 1 / alpha) }
            // Rotations.
            let rhoOld = rho
            rho = (alphaBar * alphaBar + beta * beta).squareRoot()
            let c = alphaBar / rho, s = beta / rho
            let theta = s * alpha
            alphaBar = c * alpha
            let rhoBarOld = rhoBar
            let thetaBar = sBar * rho
            let cRho = cBar * rho
            rhoBar = (cRho * cRho + theta * theta).squareRoot()
            cBar = cRho / rhoBar
            sBar = theta / rhoBar
            let zeta = cBar * zetaBar
            zetaBar = -sBar * zetaBar
            // Updates of h̄, x, h.
            let hBarScale = Float(thetaBar * rho / (rhoOld * rhoBarOld))
            let xScale = Float(zeta / (rho * rhoBar))
            let hScale = Float(theta / rho)
            for i in 0..<n {
                hBar[i] = h[i] - hBarScale * hBar[i]
                x[i] += xScale * hBar[i]
                h[i] = v[i] - hScale * h[i]
            }
            if beta == 0 || alpha == 0 { break }
        }
        return x
    }
}
