import QSMCore
import QSMMetrics
import QSMPipeline
import Testing

/// iLSQR (Li et al. NeuroImage 2015): the streak estimate must remove error from LSQR's
/// ill-conditioned cone, which is what streaking is.
@Suite(.serialized) struct ILSQRTests {
    /// Fraction of the error energy ‖F(χ − χ_true)‖² (in the mask, demeaned) whose k-space |D| < 0.1.
    func coneError(_ chi: Volume<Float>, _ problem: InversionProblem) throws -> Double {
        let grid = problem.mask.grid
        let me = chi.mean(in: problem.mask), mt = problem.truth.mean(in: problem.mask)
        var error = [Double](repeating: 0, count: grid.count)
        for i in 0..<grid.count where problem.mask.voxels[i] {
            error[i] = (Double(chi.voxels[i]) - me) - (Double(problem.truth.voxels[i]) - mt)
        }
        let fft = try FFT<Double>(shape: grid.shape)
        let spectrum = fft.forward(error)
        let d = DipoleKernel.halfSpectrum(shape: grid.shape, voxelSize: grid.voxelSize, b0Direction: SIMD3(0, 0, 1), as: Double.self)
        var cone = 0.0, total = 0.0
        for k in 0..<spectrum.count {
            let e = spectrum[k].lengthSquared
            total += e
            if abs(d[k]) < 0.1 { cone += e }
        }
        return cone / total
    }

    @Test(arguments: [false, true])
    func removesStreakingFromLSQR(noisy: Bool) throws {
        for problem in [InversionProblem.head, InversionProblem.sphere] {
            let field = noisy ? problem.noisyField() : problem.field
            let result = try ILSQR().invert(localField: field, mask: problem.mask, context: problem.context)
            let plain = try LSQR().apply(localField: field, mask: problem.mask, context: problem.context)
            let scorer = InversionBench.scorer
            let s1 = try scorer.score(recon: result.lsqr, truth: problem.truth, mask: problem.mask)
            let s2 = try scorer.score(recon: result.chi, truth: problem.truth, mask: problem.mask)
            let s0 = try scorer.score(recon: plain, truth: problem.truth, mask: problem.mask)
            let (n0, n1, n2) = (try #require(s0.nrmse), try #require(s1.nrmse), try #require(s2.nrmse))
            let (h1, h2) = (try #require(s1.hfen), try #require(s2.hfen))
            let (c1, c2) = (try coneError(result.lsqr, problem), try coneError(result.chi, problem))
            print("\(problem.name)\(noisy ? ", SNR 100" : ""): NRMSE lsqr \(n0), iLSQR step 1 \(n1), iLSQR \(n2); HFEN \(h1) → \(h2); cone share of error \(c1) → \(c2)")
            // The streak estimate lives in the cone: it must take error out of it and lower NRMSE
            // and HFEN below both step 1 and plain LSQR (Li et al. 2015, Figs. 5–7, on in vivo data).
            #expect(c2 < c1)
            #expect(n2 < n1 && n2 < n0)
            #expect(h2 < h1)
        }
    }

    @Test func parametersAreValidated() throws {
        #expect(throws: QSMError.invalidParameter("inversion.threshold", "0.7 is outside (0, 2/3)")) {
            _ = try MethodRegistry.inversion("ilsqr", settings: [try ParameterSetting(parsing: "inversion.threshold=0.7")])
        }
        let method = try MethodRegistry.inversion("ilsqr", settings: [try ParameterSetting(parsing: "inversion.artifactIterations=5")])
        #expect((method as? ILSQR)?.parameters.artifactIterations == 5)
    }

    /// Float rounding in another summation order only (FFTW thread split): 1e-4 ppm as ThreadCountTests.
    @Test func resultDoesNotDependOnThreadCount() throws {
        let phantom = InversionPhantom.make(n: 24)
        let one = try Parallelism.withThreadCount(1) { try ILSQR().apply(localField: phantom.field, mask: phantom.mask, context: StageContext()) }
        let two = try Parallelism.withThreadCount(2) { try ILSQR().apply(localField: phantom.field, mask: phantom.mask, context: StageContext()) }
        let difference = zip(one.voxels, two.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(difference < 1e-4)
    }
}
