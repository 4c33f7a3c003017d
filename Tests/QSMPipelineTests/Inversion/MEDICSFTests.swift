import QSMCore
import QSMPhantom
import QSMPipeline
import Testing

/// MEDI+0 (Liu Z et al. MRM 2018): R2*, the ventricular CSF mask, and the CSF uniformity term.
@Suite(.serialized) struct MEDICSFTests {
    let problem = InversionProblem.head

    var echoes: Volume<Float> { problem.echoMagnitude! }
    var labels: Volume<UInt8> { problem.segmentation! }

    /// SD (ppm) of `chi` over `region`.
    func spread(_ chi: Volume<Float>, in region: Mask) -> Double {
        let values = region.voxels.indices.filter { region.voxels[$0] }.map { Double(chi.voxels[$0]) }
        let mean = values.reduce(0, +) / Double(values.count)
        return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
    }

    @Test func r2starFitIsExactForMonoExponentialDecay() throws {
        // Magnitude is M0·exp(−TE·R2*) without noise: the log-linear fit returns the phantom's R2*
        // up to Float rounding of log (|Δ ln S| ~ 1e-7 over a 12 ms TE spread → ~1e-5 s⁻¹).
        let phantom = try Phantom.head(grid: problem.mask.grid)
        let r2 = try CSFMask.r2star(magnitude: echoes, echoTimes: problem.context.echoTimes, mask: problem.mask)
        var worst = 0.0
        for i in 0..<r2.voxels.count where problem.mask.voxels[i] && phantom.m0.voxels[i] > 0 {
            worst = max(worst, abs(Double(r2.voxels[i] - phantom.r2star.voxels[i])))
        }
        print("R2* fit: worst error \(worst) s⁻¹")
        #expect(worst < 1e-2)
        #expect(throws: QSMError.self) {
            _ = try CSFMask.r2star(magnitude: echoes, echoTimes: [0.004], mask: problem.mask)
        }
    }

    @Test func csfMaskFindsTheVentricles() throws {
        let r2 = try CSFMask.r2star(magnitude: echoes, echoTimes: problem.context.echoTimes, mask: problem.mask)
        let csf = try CSFMask.ventricles(r2star: r2, mask: problem.mask)
        var inside = 0, isCSF = 0
        for i in 0..<csf.voxels.count where csf.voxels[i] {
            inside += 1
            if labels.voxels[i] == UInt8(HeadLabel.csf.rawValue) { isCSF += 1 }
        }
        let allCSF = labels.voxels.indices.filter { labels.voxels[$0] == UInt8(HeadLabel.csf.rawValue) && problem.mask.voxels[$0] }.count
        print("CSF mask: \(inside) voxels, \(isCSF) labelled CSF; \(allCSF) CSF voxels in the mask")
        // R2* < 5 s⁻¹ holds only for CSF (4 s⁻¹; every other intracranial tissue ≥ 20 s⁻¹, and
        // partial-volume voxels average towards the higher value), so the mask must be pure CSF.
        #expect(inside > 0 && isCSF == inside)
        // The ventricles: lateral bodies (2 × 3.5×20×4 mm semi-axes) and the third ventricle
        // (1.5×12×8 mm): 2.95 ml at full size, 1.35 ml = 168 voxels of 8 mm³ after the ×0.77 shrink.
        // They are 2–3 voxels thick, so most voxels are partial-volume rim with R2* > 5 s⁻¹; the
        // mask must still hold a quarter of that volume (observed 56 voxels).
        #expect(inside >= 42)
        #expect(throws: QSMError.self) {
            _ = try CSFMask.ventricles(r2star: r2, mask: problem.mask, threshold: 1)
        }
    }

    @Test func csfTermMakesCSFUniformAndZero() throws {
        var on = MEDI.Parameters(); on.lambdaCSF = 100
        let medi0 = MEDI(on)
        let csf = try medi0.csfMask(echoMagnitude: echoes, mask: problem.mask, context: problem.context)
        let field = problem.noisyField()
        let plain = try MEDI().invert(localField: field, mask: problem.mask, context: problem.context,
                                      magnitude: problem.magnitude, noise: nil).chi
        let zero = try medi0.invert(localField: field, mask: problem.mask, context: problem.context,
                                    magnitude: problem.magnitude, noise: nil, csfMask: csf).chi
        let before = spread(plain, in: csf), after = spread(zero, in: csf)
        let mean = csf.voxels.indices.filter { csf.voxels[$0] }.map { Double(zero.voxels[$0]) }.reduce(0, +) / Double(csf.insideCount)
        print("CSF SD: MEDI \(before) ppm, MEDI+0 \(after) ppm; MEDI+0 CSF mean \(mean) ppm")
        // The true χ is 0 throughout CSF: the uniformity term must lower the spread there.
        #expect(after < 0.8 * before)
        // CSF is the zero reference: its mean is 0 up to Float rounding of χ ~ 0.1 ppm.
        #expect(abs(mean) < 1e-5)
    }

    /// The pipeline hands the multi-echo magnitude to the inversion, so `--set inversion.lambdaCSF=100`
    /// works from `run`: the unreferenced χ has CSF mean 0 (MEDI+0's zero reference).
    @Test func pipelinePassesEchoMagnitude() throws {
        var configuration = PipelineConfiguration()
        configuration.inversion = MEDI.name
        configuration.settings = [try ParameterSetting(parsing: "inversion.lambdaCSF=100"),
                                  try ParameterSetting(parsing: "inversion.maxIterations=3")]
        let result = try Pipeline(configuration).run(
            PipelineInputs(magnitude: echoes, mask: problem.mask, localField: problem.field), context: problem.context)
        let csf = try MEDI().csfMask(echoMagnitude: echoes, mask: problem.mask, context: problem.context)
        let chi = result.unreferencedSusceptibility
        let mean = csf.voxels.indices.filter { csf.voxels[$0] }.map { Double(chi.voxels[$0]) }.reduce(0, +) / Double(csf.insideCount)
        // Float rounding of χ ~ 0.1 ppm.
        #expect(abs(mean) < 1e-5)
    }

    @Test func csfOptionNeedsMultiEchoMagnitude() throws {
        let method = try MethodRegistry.inversion("medi", settings: [try ParameterSetting(parsing: "inversion.lambdaCSF=100")])
        #expect(throws: QSMError.invalidParameter("inversion.lambdaCSF",
                                                  "MEDI+0 finds CSF by R2*, which needs magnitude with at least two echoes")) {
            _ = try method.apply(localField: problem.field, mask: problem.mask, context: problem.context,
                                 support: InversionSupport(magnitude: problem.magnitude))
        }
        #expect(throws: QSMError.invalidParameter("inversion.lambdaCSF", "-1.0 is outside [0.0, ∞)")) {
            _ = try MethodRegistry.inversion("medi", settings: [try ParameterSetting(parsing: "inversion.lambdaCSF=-1")])
        }
    }
}
