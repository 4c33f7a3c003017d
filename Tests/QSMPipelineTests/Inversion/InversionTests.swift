import QSMCore
import QSMPipeline
import Testing

/// A χ phantom with a known local field: blobs inside a spherical brain mask, field from the
/// dipole kernel on a grid padded to 2N (Double), so the field is the physics, not the method's model.
struct InversionPhantom {
    let chi: Volume<Float>
    let field: Volume<Float>
    let mask: Mask

    static let shared = make(n: 48)

    static func make(n: Int) -> InversionPhantom {
        let grid = Grid(shape: SIMD3(n, n, n))
        var chi = Volume<Float>(zeros: grid)
        var mask = Mask(grid: grid, repeating: false)
        let c = Double(n - 1) / 2
        // (centre offset, radius, χ ppm): grey-matter-like nuclei, a vein-like rod, a calcification.
        let blobs: [(SIMD3<Double>, Double, Double)] = [
            (SIMD3(-7, 4, 2), 5, 0.12), (SIMD3(8, -3, -4), 4, 0.08), (SIMD3(0, 8, -6), 3.5, -0.1),
            (SIMD3(2, -9, 6), 3, 0.2),
        ]
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let r = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c)
            let i = grid.index(x, y, z)
            if (r * r).sum() <= 18 * 18 { mask.voxels[i] = true } else { continue }
            var v = 0.02 * Double.cos(r.x / 6) * Double.sin(r.y / 7)   // smooth tissue contrast
            for (o, radius, value) in blobs where ((r - o) * (r - o)).sum() <= radius * radius { v = value }
            // A rod along x (perpendicular to B0): vein-like.
            if (r.y - 3) * (r.y - 3) + (r.z + 10) * (r.z + 10) <= 2.25 && abs(r.x) < 12 { v = 0.3 }
            chi.voxels[i] = Float(v)
        } } }
        let padded = chi.converted(to: Double.self).padded(to: SIMD3(2 * n, 2 * n, 2 * n))
        let fft = try! FFT<Double>(shape: padded.shape)
        let d = DipoleKernel.halfSpectrum(shape: padded.shape, voxelSize: .one, b0Direction: SIMD3(0, 0, 1), as: Double.self)
        let fieldPadded = fft.inverse(zip(fft.forward(padded.voxels), d).map { $0 * $1 })
        let field = try! Volume<Double>(grid: padded.grid, voxels: fieldPadded).cropped(to: grid.shape)
        let fieldOnGrid = try! Volume<Float>(grid: grid, voxels: field.voxels.map { Float($0) }).masked(by: mask)
        return InversionPhantom(chi: chi, field: fieldOnGrid, mask: mask)
    }

    /// 100·‖(x − mean x) − (t − mean t)‖/‖t − mean t‖ over the mask (χ is defined up to a constant).
    func nrmse(_ estimate: Volume<Float>) -> Double {
        let me = estimate.mean(in: mask), mt = chi.mean(in: mask)
        var num = 0.0, den = 0.0
        for i in 0..<chi.voxels.count where mask.voxels[i] {
            let t = Double(chi.voxels[i]) - mt, e = Double(estimate.voxels[i]) - me
            num += (e - t) * (e - t); den += t * t
        }
        return 100 * (num / den).squareRoot()
    }

    func withNoise(sigma: Double, seed: UInt64) -> Volume<Float> {
        let g = CounterGaussian(seed: seed)
        var f = field
        for i in 0..<f.voxels.count where mask.voxels[i] { f.voxels[i] += Float(sigma * g.pair(stream: 0, index: UInt64(i)).0) }
        return f
    }
}

@Suite struct InversionTests {
    let phantom = InversionPhantom.shared
    let context = StageContext()

    @Test func tikhonovGradientIsStableAndAccurate() throws {
        var p = Tikhonov.Parameters(); p.regularizer = .gradient; p.lambda = 1e-3
        let chi = try Tikhonov(p).apply(localField: phantom.field, mask: phantom.mask, context: context)
        let error = phantom.nrmse(chi)
        print("Tikhonov(gradient, λ=1e-3) NRMSE \(error)")
        #expect(error < 60)
    }

    @Test func tvRecoversPhantom() throws {
        let (chi, log) = try TVADMM().invert(localField: phantom.field, mask: phantom.mask, context: context, recordObjective: true)
        let error = phantom.nrmse(chi)
        print("TV-ADMM NRMSE \(error) after \(log.iterations) iterations, objective \(log.objective.first!) → \(log.objective.last!)")
        #expect(error < 50)
        #expect(log.objective.last! < log.objective.first!)
    }

    @Test func rtsRecoversPhantom() throws {
        let (chi, log) = try RTS().invert(localField: phantom.field, mask: phantom.mask, context: context)
        let error = phantom.nrmse(chi)
        print("RTS NRMSE \(error) after \(log.iterations) iterations")
        #expect(error < 50)
    }

    @Test func ndiRecoversPhantom() throws {
        let (chi, log) = try NDI().invert(localField: phantom.field, mask: phantom.mask, context: context, recordObjective: true)
        let error = phantom.nrmse(chi)
        print("NDI NRMSE \(error) after \(log.iterations) iterations, objective \(log.objective.first!) → \(log.objective.last!)")
        #expect(error < 60)
        // Gradient descent with τ·max|D|² = 2·(2/3)² < 2 is a descent method: objective falls monotonically.
        for (a, b) in zip(log.objective, log.objective.dropFirst()) { #expect(b <= a * (1 + 1e-5)) }
    }
}

extension InversionTests {
    @Test func tgvRecoversPhantomFromWrappedPhase() throws {
        let tgv = TGV()
        // Wrap the phase: TGV-QSM works from the Laplacian of wrapped phase.
        let phase = phantom.field.map { v -> Float in
            let p = Double(v) * tgv.radiansPerPPM(StageContext())
            return Float(p - 2 * Double.pi * (p / (2 * Double.pi)).rounded())
        }
        let (chi, log) = try tgv.invert(phase: phase, mask: phantom.mask, context: context)
        // Score inside the eroded mask TGV returns (erosion is part of the method).
        let evaluated = phantom.mask.map { $0 }
        var eroded = evaluated
        for i in 0..<eroded.voxels.count { eroded.voxels[i] = chi.voxels[i] != 0 }
        let error = InversionPhantom(chi: phantom.chi, field: phantom.field, mask: eroded).nrmse(chi)
        print("TGV NRMSE \(error) after \(log.iterations) iterations (eroded mask \(eroded.insideCount) of \(phantom.mask.insideCount))")
        #expect(error < 60)
    }

    @Test func lsqrRecoversPhantomWithDecreasingResidual() throws {
        let (chi, log) = try LSQR().invert(localField: phantom.field, mask: phantom.mask, context: context)
        let error = phantom.nrmse(chi)
        print("LSQR NRMSE \(error) after \(log.iterations) iterations")
        #expect(error < 60)
        for (a, b) in zip(log.objective, log.objective.dropFirst()) { #expect(b <= a * (1 + 1e-6)) }
    }

    @Test func mediRecoversPhantom() throws {
        // A magnitude whose edges coincide with χ's (as iron-rich nuclei darken T2*-weighted images).
        let magnitude = phantom.chi.map { 1 - 2 * $0 }.masked(by: phantom.mask)
        let (chi, log) = try MEDI().invert(localField: phantom.field, mask: phantom.mask, context: context,
                                           magnitude: magnitude, noise: nil)
        let error = phantom.nrmse(chi)
        print("MEDI NRMSE \(error) after \(log.iterations) Gauss–Newton steps")
        #expect(error < 50)
    }
}

/// FFTW may add in another order with another thread count; iterative results agree to Float
/// rounding accumulated over the iterations (χ ~ 0.3 ppm; 1e-4 ppm is ~3e-4 relative).
@Suite struct ThreadCountTests {
    @Test(arguments: ["tv", "rts", "ndi", "lsqr", "medi", "tgv"])
    func iterativeResultsDoNotDependOnThreadCount(_ name: String) throws {
        let phantom = InversionPhantom.make(n: 24)
        let method = try MethodRegistry.inversion(name)
        let one = try Parallelism.withThreadCount(1) {
            try method.apply(localField: phantom.field, mask: phantom.mask, context: StageContext())
        }
        let two = try Parallelism.withThreadCount(2) {
            try method.apply(localField: phantom.field, mask: phantom.mask, context: StageContext())
        }
        let difference = zip(one.voxels, two.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(difference < 1e-4, "\(name): \(difference) ppm")
    }
}

@Suite struct InversionParameterTests {
    let phantom = InversionPhantom.make(n: 16)
    let context = StageContext()

    /// Each parameter outside its documented range fails before any work, naming `inversion.<name>`.
    @Test func invalidParametersAreRejected() throws {
        let cases: [(String, String, String)] = [
            ("tikhonov", "lambda=-1", "inversion.lambda: -1.0 is outside [0.0, ∞)"),
            ("tv", "maxIterations=0", "inversion.maxIterations: 0 is outside [1, 100000]"),
            ("rts", "threshold=0.9", "inversion.threshold: 0.9 is outside (0, 2/3)"),
            ("ndi", "stepSize=0", "inversion.stepSize: 0.0 is outside (0.0, ∞)"),
            ("lsqr", "tolerance=1.5", "inversion.tolerance: 1.5 is outside (0.0, 1.0)"),
            ("medi", "lambda=0", "inversion.lambda: 0.0 is outside (0.0, ∞)"),
            ("tgv", "erosions=-1", "inversion.erosions: -1 is outside [0, 100]"),
        ]
        for (method, setting, message) in cases {
            let set = try ParameterSetting(parsing: "inversion.\(setting)")
            #expect(throws: QSMError.invalidParameter(String(message.prefix { $0 != ":" }),
                                                      String(message.drop { $0 != ":" }.dropFirst(2)))) {
                _ = try MethodRegistry.inversion(method, settings: [set])
            }
        }
    }

    @Test func mismatchedMaskIsRejected() {
        let other = Mask(grid: Grid(shape: SIMD3(16, 16, 15)), repeating: true)
        #expect(throws: QSMError.self) {
            try TVADMM().apply(localField: phantom.field, mask: other, context: context)
        }
    }
}

/// Every registered inversion on the same phantom, noise-free and noisy: the table goes to the
/// test log and the issue note; the bounds encode the literature's ranking.
@Suite struct InversionComparisonTests {
    /// Field noise for SNR 100 at TE 20 ms, 3 T: σ_φ = 1/SNR rad → σ_f = σ_φ/(2π·γ̄·B0·TE) ppm.
    static let noiseSigma = 1.0 / (100 * 2 * Double.pi * 42.5775 * 3 * 0.020)

    @Test func regularisedMethodsBeatTKD() throws {
        let phantom = InversionPhantom.shared
        let noisy = phantom.withNoise(sigma: Self.noiseSigma, seed: 7)
        let magnitude = phantom.chi.map { 1 - 2 * $0 }.masked(by: phantom.mask)
        var table: [String: (clean: Double, noisy: Double)] = [:]
        for name in MethodRegistry.names(of: .inversion) {
            let method = try MethodRegistry.inversion(name)
            func score(_ field: Volume<Float>) throws -> Double {
                let chi = try method.apply(localField: field, mask: phantom.mask, context: StageContext(),
                                           support: InversionSupport(magnitude: magnitude))
                // TGV returns χ on its eroded mask: score where it answered.
                var scored = phantom.mask
                if name == "tgv" { for i in 0..<scored.voxels.count { scored.voxels[i] = chi.voxels[i] != 0 } }
                return InversionPhantom(chi: phantom.chi, field: phantom.field, mask: scored).nrmse(chi)
            }
            table[name] = (try score(phantom.field), try score(noisy))
        }
        print("inversion NRMSE % (demeaned, in mask), 48³ phantom: method | noise-free | SNR 100")
        for (name, v) in table.sorted(by: { $0.value.clean < $1.value.clean }) {
            print("  \(name) | \((v.clean * 10).rounded() / 10) | \((v.noisy * 10).rounded() / 10)")
        }
        let tkd = try #require(table["tkd"])
        // Sparsity-regularised methods beat TKD (Langkammer et al. MRM 2018, 2016 challenge ranking).
        // On this smooth-plus-blobs phantom TKD (29 %) beats identity Tikhonov at its default λ,
        // RTS with 4 LSMR steps, NDI, LSQR and TGV at 1000 iterations; the head-phantom comparison
        // with streaking-prone sources is the real ranking test.
        for name in ["tv", "medi"] {
            #expect(table[name]!.clean < tkd.clean, "\(name) should beat TKD without noise")
            #expect(table[name]!.noisy < tkd.noisy, "\(name) should beat TKD at SNR 100")
        }
        // Noise at SNR 100 adds little on a 48³ phantom: no method degrades by more than 15 points.
        for (name, v) in table { #expect(v.noisy - v.clean < 15, "\(name) is too sensitive to noise") }
    }
}
