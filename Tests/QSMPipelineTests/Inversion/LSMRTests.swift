import QSMPipeline
import Testing

@Suite struct LSMRTests {
    /// With three distinct diagonal values, Krylov methods are exact after three steps.
    @Test func diagonalSystemSolvedInDistinctValueSteps() {
        let diagonal: [Float] = [0.5, -0.3, 0.5, 0.2, -0.3, 0.2]
        let rhs: [Float] = (0..<12).map { Float($0 % 5) - 1.5 }
        let x = DiagonalLSMR.solve(diagonal: diagonal, rhs: rhs, iterations: 3)
        for i in 0..<12 { #expect(abs(x[i] - rhs[i] / diagonal[i / 2]) < 1e-4) }
        // Fewer steps cannot be exact here.
        let early = DiagonalLSMR.solve(diagonal: diagonal, rhs: rhs, iterations: 1)
        #expect((0..<12).contains { abs(early[$0] - rhs[$0] / diagonal[$0 / 2]) > 1e-2 })
    }
}

/// The polynomial LSMR against the textbook vector recurrences (Fong & Saunders 2011, Algorithm 1,
/// λ = 0) run here in Double on the same diagonal system: the dipole kernel of a 24³ grid and a
/// smooth right-hand side. Both compute the same k-th iterate; Double rounding differs by ~1e-13
/// (measured up to 100 iterations in a NumPy prototype) and the Float output adds ~6e-8, so 1e-6
/// relative is a rounding bound, while a wrong recurrence or moment differs at O(1e-2) or more.
@Suite struct LSMRPolynomialTests {
    static func textbook(diagonal: [Double], rhs b: [Double], iterations: Int) -> [Double] {
        func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let n = b.count
        var beta = norm(b), u = b.map { $0 / beta }
        var v = (0..<n).map { diagonal[$0 / 2] * u[$0] }
        var alpha = norm(v)
        v = v.map { $0 / alpha }
        var h = v, hBar = [Double](repeating: 0, count: n), x = [Double](repeating: 0, count: n)
        var alphaBar = alpha, zetaBar = alpha * beta, rho = 1.0, rhoBar = 1.0, cBar = 1.0, sBar = 0.0
        for _ in 0..<iterations {
            u = (0..<n).map { diagonal[$0 / 2] * v[$0] - alpha * u[$0] }
            beta = norm(u); u = u.map { $0 / beta }
            v = (0..<n).map { diagonal[$0 / 2] * u[$0] - beta * v[$0] }
            alpha = norm(v); v = v.map { $0 / alpha }
            let rhoOld = rho
            rho = (alphaBar * alphaBar + beta * beta).squareRoot()
            let c = alphaBar / rho, s = beta / rho, theta = s * alpha
            alphaBar = c * alpha
            let rhoBarOld = rhoBar, thetaBar = sBar * rho, cRho = cBar * rho
            rhoBar = (cRho * cRho + theta * theta).squareRoot()
            cBar = cRho / rhoBar; sBar = theta / rhoBar
            let zeta = cBar * zetaBar
            zetaBar = -sBar * zetaBar
            let hBarScale = thetaBar * rho / (rhoOld * rhoBarOld), xScale = zeta / (rho * rhoBar), hScale = theta / rho
            for i in 0..<n {
                hBar[i] = h[i] - hBarScale * hBar[i]
                x[i] += xScale * hBar[i]
                h[i] = v[i] - hScale * h[i]
            }
        }
        return x
    }

    @Test(arguments: [1, 2, 4, 8, 20, 50])
    func polynomialIteratesMatchTheVectorRecurrences(iterations: Int) throws {
        let shape = SIMD3(24, 24, 24)
        let d: [Float] = DipoleKernel.halfSpectrum(shape: shape, voxelSize: SIMD3(1, 1, 1), b0Direction: SIMD3(0, 0.3, 1))
        // A smooth field: a Gaussian blob's spectrum times D, plus a small pseudo-random part.
        var generator = SeededGenerator(seed: 5)
        let b: [Float] = (0..<2 * d.count).map { i in
            let k = i / 2, x = k % 13, y = (k / 13) % 24, z = k / (13 * 24)
            let r2 = Float(x * x + min(y, 24 - y) * min(y, 24 - y) + min(z, 24 - z) * min(z, 24 - z))
            return d[k] * 100 * Float.exp(-r2 / 20) * (i % 2 == 0 ? 1 : 0.3) + Float.random(in: -0.01...0.01, using: &generator)
        }
        let expected = Self.textbook(diagonal: d.map(Double.init), rhs: b.map(Double.init), iterations: iterations)
        let x = DiagonalLSMR.solve(diagonal: d, rhs: b, iterations: iterations)
        var difference = 0.0, size = 0.0
        for i in 0..<b.count { difference += (Double(x[i]) - expected[i]) * (Double(x[i]) - expected[i]); size += expected[i] * expected[i] }
        #expect((difference / size).squareRoot() < 1e-6, "\(iterations) iterations: \((difference / size).squareRoot())")
    }
}
