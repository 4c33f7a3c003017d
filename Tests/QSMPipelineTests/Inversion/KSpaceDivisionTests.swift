import QSMCore
import QSMPipeline
import Testing

@Suite struct KSpaceDivisionTests {
    /// Gains computed independently for QSM.md §7.1–7.2 from the stated integrals (4 decimals there).
    @Test func meanGainsMatchTheReferenceIntegrals() {
        #expect(abs(TKD.meanGain(threshold: 0.10) - 0.9129) < 5e-5)
        #expect(abs(TKD.meanGain(threshold: 0.15) - 0.8683) < 5e-5)
        #expect(abs(TKD.meanGain(threshold: 0.20) - 0.8224) < 5e-5)
        #expect(abs(TSVD.meanGain(threshold: 0.15) - 0.7330) < 5e-5)
    }

    /// χ = cos(2π·3z/N) has k ∥ B0 where D = −2/3 (above any δ < 2/3): TKD and TSVD are exact, and
    /// the corrected TKD is the uncorrected one divided by h̄(δ).
    @Test func modeAlongB0IsRecoveredAndCorrectionScales() throws {
        let n = 16
        let grid = Grid(shape: SIMD3(n, n, n))
        var chi = Volume<Float>(zeros: grid)
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            chi[x, y, z] = Float(0.1 * Double.cos(2 * Double.pi * 3 * Double(z) / Double(n)))
        } } }
        let field = chi.map { -2.0 / 3 * $0 }
        let mask = Mask(grid: grid, repeating: true)
        let context = StageContext()
        // Two Float FFTs of 16³: error ~ ε·log2(N)·max|χ|, far below 1e-6 ppm.
        for method in [try MethodRegistry.inversion("tkd"), try MethodRegistry.inversion("tsvd")] {
            let estimate = try method.apply(localField: field, mask: mask, context: context)
            for i in 0..<grid.count { #expect(abs(estimate.voxels[i] - chi.voxels[i]) < 1e-6) }
        }
        let corrected = try MethodRegistry.inversion("tkd", settings: [try ParameterSetting(parsing: "inversion.correction=true")])
            .apply(localField: field, mask: mask, context: context)
        let gain = TKD.meanGain(threshold: 0.15)
        for i in 0..<grid.count { #expect(abs(Double(corrected.voxels[i]) * gain - Double(chi.voxels[i])) < 1e-6) }
    }
}
