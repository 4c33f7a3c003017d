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
