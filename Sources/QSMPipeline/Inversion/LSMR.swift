/// LSMR for min‖Ax − b‖ with A real and diagonal, acting on interleaved complex k-space vectors.
///
/// Fong DC-L, Saunders M. "LSMR: An iterative algorithm for sparse least-squares problems."
/// SIAM J Sci Comput 2011;33:2950–2971. doi:10.1137/10079687X. Undamped (λ = 0); the iteration count
/// is the regulariser (RTS step 1 runs 4 iterations, QSM.md §7.7).
package enum DiagonalLSMR {
    /// x after `iterations` steps, starting from 0; `diagonal[k]` multiplies entries 2k and 2k+1.
    package static func solve(diagonal: [Float], rhs b: [Float], iterations: Int) -> [Float] {
        let n = b.count
        func apply(_ v: [Float]) -> [Float] { (0..<n).map { v[$0] * diagonal[$0 / 2] } }
        func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        var x = [Float](repeating: 0, count: n)
        var beta = norm(b)
        guard beta > 0 else { return x }
        var u = b.map { Float(Double($0) / beta) }
        var v = apply(u)
        var alpha = norm(v)
        guard alpha > 0 else { return x }
        v = v.map { Float(Double($0) / alpha) }

        var alphaBar = alpha, zetaBar = alpha * beta, rho = 1.0, rhoBar = 1.0, cBar = 1.0, sBar = 0.0
        var h = v, hBar = [Float](repeating: 0, count: n)
        for _ in 0..<iterations {
            // Bidiagonalisation.
            let av = apply(v)
            u = (0..<n).map { av[$0] - Float(alpha) * u[$0] }
            beta = norm(u)
            if beta > 0 { u = u.map { Float(Double($0) / beta) } }
            let atu = apply(u)
            v = (0..<n).map { atu[$0] - Float(beta) * v[$0] }
            alpha = norm(v)
            if alpha > 0 { v = v.map { Float(Double($0) / alpha) } }
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
