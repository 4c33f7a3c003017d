import QSMCore
import QSMPipeline
import Testing

/// RTS step 1 is QSM.jl's: `lstol` iterations of LSMR (Fong & Saunders, SIAM J Sci Comput
/// 2011;33:2950, doi:10.1137/10079687X) from x = 0 on the diagonal system D·X = F[f] over the
/// half spectrum. LSMR's k-th iterate is defined as the minimiser of ‖Aᵀ(b − Ax)‖ over the Krylov
/// space span{Aᵀb, (AᵀA)Aᵀb, …}: for A = D diagonal, x = Σ_j c_j D^{2j−1} b with c from a k×k
/// least-squares problem, solved here in Double, independently of the bidiagonalisation.
@Suite struct RTSStepOneTests {
    /// On the sphere phantom's spectrum the iterates agree to 1e-5 relative (measured 7e-8 for
    /// k = 1…4: Float LSMR against a Double moment solve); and the measured fact
    /// behind RTS's default under-fitting: after 4 steps the gain D·x/b on 0.15 < |D| < 0.2 is
    /// about one half (measured 0.49 here and on the head), after 20 steps within 2 % of 1.
    @Test func lsmrIsTheKrylovMinimiserOfTheDipoleSystem() throws {
        let problem = InversionProblem.sphere
        let shape = problem.field.grid.shape
        let fft = try FFT<Float>(shape: shape)
        let spectrum = fft.forward(problem.field.masked(by: problem.mask).voxels)
        let d: [Float] = DipoleKernel.halfSpectrum(shape: shape, voxelSize: problem.field.grid.voxelSize,
                                                   b0Direction: problem.context.b0Direction)
        let b = spectrum.flatMap { [$0.real, $0.imaginary] }
        for k in 1...4 {
            // Normal equations of min_c ‖D b − Σ_j c_j D^{2j+1} b‖ (the Aᵀ-residual of x = Σ c_j D^{2j−1} b).
            var gram = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
            var right = [Double](repeating: 0, count: k)
            for i in 0..<b.count {
                let dk = Double(d[i / 2]), bi = Double(b[i]), d2 = dk * dk
                var powers = [Double](repeating: 0, count: k)
                var p = dk * d2
                for j in 0..<k { powers[j] = p * bi; p *= d2 }
                for r in 0..<k {
                    right[r] += powers[r] * dk * bi
                    for c in 0..<k { gram[r][c] += powers[r] * powers[c] }
                }
            }
            let c = try #require(Self.solve(gram, right))
            let x = DiagonalLSMR.solve(diagonal: d, rhs: b, iterations: k)
            var difference = 0.0, size = 0.0
            for i in 0..<b.count {
                let dk = Double(d[i / 2])
                var expected = 0.0, p = dk
                for j in 0..<k { expected += c[j] * p * Double(b[i]); p *= dk * dk }
                difference += (Double(x[i]) - expected) * (Double(x[i]) - expected); size += expected * expected
            }
            #expect((difference / size).squareRoot() < 1e-5, "k = \(k): \((difference / size).squareRoot())")
        }
        func gain(_ iterations: Int) -> Double {
            let x = DiagonalLSMR.solve(diagonal: d, rhs: b, iterations: iterations)
            var fitted = 0.0, total = 0.0
            for i in 0..<b.count where abs(d[i / 2]) > 0.15 && abs(d[i / 2]) < 0.2 {
                fitted += Double(d[i / 2]) * Double(x[i]) * Double(b[i]); total += Double(b[i]) * Double(b[i])
            }
            return fitted / total
        }
        #expect(abs(gain(4) - 0.5) < 0.1, "gain after 4 steps \(gain(4))")
        #expect(abs(gain(20) - 1) < 0.02, "gain after 20 steps \(gain(20))")
    }

    /// Gaussian elimination with partial pivoting; nil when singular.
    static func solve(_ a: [[Double]], _ b: [Double]) -> [Double]? {
        var m = a, r = b
        let n = r.count
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
            guard m[pivot][col] != 0 else { return nil }
            m.swapAt(col, pivot); r.swapAt(col, pivot)
            for row in col + 1..<n {
                let f = m[row][col] / m[col][col]
                for c in col..<n { m[row][c] -= f * m[col][c] }
                r[row] -= f * r[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = r[row]
            for c in row + 1..<n { s -= m[row][c] * x[c] }
            x[row] = s / m[row][row]
        }
        return x
    }
}
