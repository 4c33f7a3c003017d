import QSMCore
import QSMPipeline
import Testing

/// TV-ADMM with the nonlinear data term ½‖e^{iDχ} − e^{if}‖² (Milovic et al. MRM 2018, FANSI).
@Suite struct NonlinearTVTests {
    let phantom = InversionPhantom.shared
    /// 3 T, echo spacing 5 ms: s = 2π·γ̄·B0·ΔTE ≈ 4.01 rad/ppm.
    let context = StageContext(fieldStrength: 3, echoTimes: [0.005, 0.010])

    func nonlinear(_ configure: (inout TVADMM.Parameters) -> Void = { _ in }) -> TVADMM {
        var p = TVADMM.Parameters(); p.dataTerm = .nonlinear
        configure(&p)
        return TVADMM(p)
    }

    /// Relative L2 difference of two maps over the mask.
    func difference(_ a: Volume<Float>, _ b: Volume<Float>) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<a.voxels.count where phantom.mask.voxels[i] {
            let d = Double(a.voxels[i] - b.voxels[i]); num += d * d; den += Double(b.voxels[i] * b.voxels[i])
        }
        return (num / den).squareRoot()
    }

    @Test func smallPhaseReducesToLinearTV() throws {
        // Phase residuals of ~0.01 rad: sin r = r to 1e-5, so both data terms define the same
        // minimiser (λ is rescaled with s). With μ = 1 the paths coincide too: the y-step then gives
        // y − v = f exactly for a quadratic term, so the χ-steps are the linear ones (agreement to
        // Float rounding, observed 2e-7). With μ = 2 only the minimiser is shared; both runs stop at
        // a relative change of 1e-3, so they agree to that order (observed 8e-4; bound 1e-2).
        let linear = try TVADMM().invert(localField: phantom.field, mask: phantom.mask, context: context).chi
        let (chi, log) = try nonlinear { $0.phaseScale = 0.1 }.invert(localField: phantom.field, mask: phantom.mask,
                                                                       context: context)
        let d = difference(chi, linear)
        print("nonlinear TV (s = 0.1 rad/ppm) vs linear: relative difference \(d), \(log.iterations) iterations, NRMSE \(phantom.nrmse(chi)) vs \(phantom.nrmse(linear))")
        #expect(d < 1e-4)
        let other = try nonlinear { $0.phaseScale = 0.1; $0.mu = 2 }.apply(localField: phantom.field, mask: phantom.mask,
                                                                            context: context)
        print("μ = 2: relative difference \(difference(other, linear)), NRMSE \(phantom.nrmse(other))")
        #expect(difference(other, linear) < 1e-2)
        #expect(abs(phantom.nrmse(other) - phantom.nrmse(linear)) < 2)
    }

    @Test func objectiveDecreasesAndPhantomIsRecovered() throws {
        let (chi, log) = try nonlinear().invert(localField: phantom.field, mask: phantom.mask, context: context,
                                                recordObjective: true)
        let error = phantom.nrmse(chi)
        print("nonlinear TV NRMSE \(error) after \(log.iterations) iterations, objective \(log.objective.first!) → \(log.objective.last!)")
        // ADMM is not monotone in the objective, but from χ = 0 it must end far below its start.
        #expect(log.objective.last! < 0.5 * log.objective.first!)
        // The linear TV test's bound on this phantom (InversionTests.tvRecoversPhantom).
        #expect(error < 50)
    }

    /// Unwrapping errors add 2π to the phase of whole regions; the complex data term cannot see
    /// them, the linear one takes them for a field of 2π/s ppm (1.6 ppm here, 20× the local field).
    @Test func phaseJumpsOf2PiDoNotMatter() throws {
        let s = try #require(Optional(nonlinear().phaseScale(context)))
        var wrapped = phantom.field
        for z in 30..<36 { for y in 14..<22 { for x in 16..<26 {
            let i = phantom.mask.grid.index(x, y, z)
            if phantom.mask.voxels[i] { wrapped.voxels[i] += Float(2 * Double.pi / s) }
        } } }
        let clean = try nonlinear().apply(localField: phantom.field, mask: phantom.mask, context: context)
        let jumped = try nonlinear().apply(localField: wrapped, mask: phantom.mask, context: context)
        let linearJumped = try TVADMM().apply(localField: wrapped, mask: phantom.mask, context: context)
        let d = difference(jumped, clean)
        print("2π jumps: nonlinear changes by \(d) (NRMSE \(phantom.nrmse(jumped))); linear NRMSE \(phantom.nrmse(linearJumped))")
        // sin and cos of r and r + 2π differ by Float rounding of the larger argument (~1e-6 rad),
        // amplified by the inversion: 1e-3 relative is far below any real change.
        #expect(d < 1e-3)
        #expect(phantom.nrmse(linearJumped) > 2 * phantom.nrmse(jumped))
    }

    /// The Newton y-step runs voxels in parallel; only FFTW's summation order may differ (1e-4 ppm,
    /// as `ThreadCountTests`).
    @Test func resultDoesNotDependOnThreadCount() throws {
        let small = InversionPhantom.make(n: 24)
        let one = try Parallelism.withThreadCount(1) { try nonlinear().apply(localField: small.field, mask: small.mask, context: context) }
        let two = try Parallelism.withThreadCount(2) { try nonlinear().apply(localField: small.field, mask: small.mask, context: context) }
        #expect((zip(one.voxels, two.voxels).map { abs($0 - $1) }.max() ?? 0) < 1e-4)
    }

    /// With W = mask the linear term goes through the split path; its objective must fall and, on
    /// the sphere (whose sources lie deep inside the mask, so the field outside is weak), it must
    /// agree with the unweighted map to a few per cent (measured NRMSE 25.71 vs 25.80 %).
    @Test func maskWeightingOnTheSphere() throws {
        var p = TVADMM.Parameters(); p.dataWeighting = .mask
        let (chi, log) = try TVADMM(p).invert(localField: phantom.field, mask: phantom.mask, context: context,
                                             recordObjective: true)
        let plain = try TVADMM().apply(localField: phantom.field, mask: phantom.mask, context: context)
        print("TV W = mask: NRMSE \(phantom.nrmse(chi)) (unweighted \(phantom.nrmse(plain))), objective \(log.objective.first!) → \(log.objective.last!)")
        #expect(log.objective.last! < 0.5 * log.objective.first!)
        #expect(abs(phantom.nrmse(chi) - phantom.nrmse(plain)) < 2)
    }

    @Test func optionIsSetThroughTheRegistry() throws {
        let method = try MethodRegistry.inversion("tv", settings: [try ParameterSetting(parsing: "inversion.dataTerm=nonlinear"),
                                                                   try ParameterSetting(parsing: "inversion.mu=2")])
        let tv = try #require(method as? TVADMM)
        #expect(tv.parameters.dataTerm == .nonlinear && tv.parameters.mu == 2)
        #expect(throws: QSMError.invalidParameter("inversion.dataTerm", "'quadratic' is not one of linear|nonlinear")) {
            _ = try MethodRegistry.inversion("tv", settings: [try ParameterSetting(parsing: "inversion.dataTerm=quadratic")])
        }
        let masked = try MethodRegistry.inversion("tv", settings: [try ParameterSetting(parsing: "inversion.dataWeighting=mask")])
        #expect((masked as? TVADMM)?.parameters.dataWeighting == .mask)
        #expect(throws: QSMError.invalidParameter("inversion.mu", "0.0 is outside (0.0, ∞)")) {
            _ = try MethodRegistry.inversion("tv", settings: [try ParameterSetting(parsing: "inversion.mu=0")])
        }
    }
}
