import QSMCore
import QSMMetrics
import QSMPhantom
import QSMPipeline
import Testing

/// One inversion problem with a known answer: the true local field of a χ map (no background
/// removal in the loop), the χ it came from, the evaluation mask, a magnitude for MEDI's edges.
struct InversionProblem: Sendable {
    let name: String
    let truth: Volume<Float>
    let field: Volume<Float>
    let mask: Mask
    let magnitude: Volume<Float>
    let context: StageContext
    /// Field noise SD (ppm) equivalent to SNR 100 for this problem's protocol.
    let noiseSigma: Double
    /// Magnitude per echo of `context.echoTimes` (head only: MEDI+0 fits R2* to it).
    var echoMagnitude: Volume<Float>? = nil
    /// Labels (head only; `HeadLabel` numbering).
    var segmentation: Volume<UInt8>? = nil

    /// The field plus white Gaussian noise of SD `noiseSigma` inside the mask (seeded).
    func noisyField(seed: UInt64 = 7) -> Volume<Float> {
        let g = CounterGaussian(seed: seed)
        var f = field
        for i in 0..<f.voxels.count where mask.voxels[i] {
            f.voxels[i] += Float(noiseSigma * g.pair(stream: 0, index: UInt64(i)).0)
        }
        return f
    }

    /// The quick suite's head (phantoms/quick.yaml: 3 T, 4 echoes 4–16 ms, B0 ∥ z) on a 64×78×68
    /// grid of 2 mm voxels. The anatomy is shrunk to fit (HeadPhantom: fields do not depend on
    /// absolute size), so this is the full head at ~2.6 mm effective resolution. The field is the
    /// simulator's forward model of `localChi` (2× padding, D(0) = 0), i.e. `SimulationTruth.localField`.
    static let head: InversionProblem = {
        let grid = Grid(shape: SIMD3(64, 78, 68), voxelSize: SIMD3(repeating: 2))
        let phantom = try! Phantom.head(grid: grid)
        let forward = ForwardModel(b0Direction: phantom.b0Direction, paddingFactor: phantom.paddingFactor)
        let field = try! forward.field(of: phantom.localChi).masked(by: phantom.mask)
        let echoTimes = [0.004, 0.008, 0.012, 0.016]
        // Magnitude at the middle echo: M0·exp(−TE·R2*), whose edges are the anatomy's.
        var magnitude = phantom.m0
        for i in 0..<magnitude.voxels.count {
            magnitude.voxels[i] = phantom.m0.voxels[i] * Float.exp(-0.010 * phantom.r2star.voxels[i])
        }
        let context = StageContext(b0Direction: phantom.b0Direction, fieldStrength: phantom.fieldStrength,
                                   echoTimes: echoTimes)
        // SNR 100 means phase noise σ_φ = 1/100 rad per echo (relative to the peak magnitude); a
        // least-squares slope over TE 4–16 ms with a free offset has SD σ_φ/(2π·γ̄·B0·√Σ(TE−T̄)²),
        // √Σ(TE−T̄)² = √80 ms: 0.00139 ppm, the figure measured for the quick suite's fit
        // (docs/notes/accuracy-head.md, 0.0014–0.002 ppm). The local field's RMS is ~0.01 ppm.
        let spread = (echoTimes.map { ($0 - 0.010) * ($0 - 0.010) }.reduce(0, +)).squareRoot()
        let sigma = 1 / (100 * 2 * Double.pi * context.conventions.gyromagneticRatio * phantom.fieldStrength * spread)
        var echoes = [Float]()
        for te in echoTimes {
            for i in 0..<grid.count { echoes.append(phantom.m0.voxels[i] * Float.exp(-Float(te) * phantom.r2star.voxels[i])) }
        }
        return InversionProblem(name: "head 64×78×68, 2 mm", truth: phantom.localChi, field: field, mask: phantom.mask,
                                magnitude: magnitude.masked(by: phantom.mask), context: context, noiseSigma: sigma,
                                echoMagnitude: try! Volume(grid: grid, frames: echoTimes.count, voxels: echoes),
                                segmentation: phantom.segmentation)
    }()

    /// The 48³ sphere-with-blobs phantom of `InversionTests` (unit voxels), single echo 20 ms at 3 T.
    static let sphere: InversionProblem = {
        let p = InversionPhantom.shared
        let context = StageContext(fieldStrength: 3, echoTimes: [0.020])
        // σ_φ = 1/100 rad at one echo of 20 ms: σ_f = σ_φ/(2π·γ̄·B0·TE) = 0.00062 ppm.
        let sigma = 1 / (100 * 2 * Double.pi * context.conventions.gyromagneticRatio * 3 * 0.020)
        return InversionProblem(name: "sphere 48³, 1 mm", truth: p.chi, field: p.field, mask: p.mask,
                                magnitude: p.chi.map { 1 - 2 * $0 }.masked(by: p.mask), context: context,
                                noiseSigma: sigma)
    }()
}

/// A method's scores on one field.
struct InversionScore {
    let label: String
    /// Demeaned NRMSE (%) over the fixed mask; voxels the method leaves out count as χ = 0.
    let nrmse: Double
    /// HFEN (%), qsm-ci kernel, norms over the mask.
    let hfen: Double
    /// Demeaned NRMSE (%) over the voxels the method answered (TGV erodes its mask).
    let nrmseCovered: Double
    /// Fraction of mask voxels with a non-zero answer.
    let coverage: Double
    /// Wall time, s.
    let seconds: Double
}

extension Mask {
    /// A copy changed by `body`.
    func with(_ body: (inout Mask) -> Void) -> Mask { var copy = self; body(&copy); return copy }
}

/// Runs labelled methods on a problem and renders the Markdown table.
enum InversionBench {
    static let scorer = Scorer(convention: .default, toolVersion: "test")

    /// Every registered inversion at its defaults, labelled by registry name.
    static var registered: [(String, any DipoleInversion)] {
        MethodRegistry.names(of: .inversion).map { ($0, try! MethodRegistry.inversion($0)) }
    }

    static func run(_ methods: [(String, any DipoleInversion)], on problem: InversionProblem,
                    field: Volume<Float>) throws -> [String: InversionScore] {
        var out: [String: InversionScore] = [:]
        for (label, method) in methods {
            let start = now()
            let chi = try method.apply(localField: field, mask: problem.mask, context: problem.context,
                                       support: InversionSupport(magnitude: problem.magnitude,
                                                                 echoMagnitude: problem.echoMagnitude))
            let seconds = (now() - start) / 1000
            let scores = try scorer.score(recon: chi, truth: problem.truth, mask: problem.mask)
            let covered = problem.mask.map { $0 }.with { m in
                for i in 0..<m.voxels.count { m.voxels[i] = m.voxels[i] && chi.voxels[i] != 0 }
            }
            let nrmseCovered = try scorer.score(recon: chi, truth: problem.truth, mask: covered).nrmse
            out[label] = InversionScore(label: label, nrmse: try #require(scores.nrmse), hfen: try #require(scores.hfen),
                                        nrmseCovered: try #require(nrmseCovered), coverage: scores.coverage,
                                        seconds: seconds)
        }
        return out
    }

    /// | method | NRMSE % | HFEN % | coverage | time s |, sorted by NRMSE.
    static func table(_ title: String, _ rows: [String: InversionScore]) -> String {
        func f(_ v: Double, _ digits: Int) -> String {
            let scale = Double.pow(10, Double(digits))
            return "\((v * scale).rounded() / scale)"
        }
        var text = "\n\(title)\n\n| method | NRMSE % | HFEN % | coverage | NRMSE % where answered | time s |\n"
        text += "|---|---:|---:|---:|---:|---:|\n"
        for r in rows.values.sorted(by: { $0.nrmse < $1.nrmse }) {
            text += "| \(r.label) | \(f(r.nrmse, 1)) | \(f(r.hfen, 1)) | \(f(r.coverage, 3)) | \(f(r.nrmseCovered, 1)) | \(f(r.seconds, 2)) |\n"
        }
        return text
    }
}

/// Every registered inversion from the true local field of the head and of the sphere phantom,
/// noise-free and at SNR 100, scored with the project's default metrics (demeaned NRMSE and the
/// qsm-ci HFEN over the fixed mask, QSM.md §11). The tables go to the test log and to
/// docs/notes/inversion-accuracy.md.
///
/// The bounds have two kinds:
/// - Ranking, from the literature. The 2016 challenge (Langkammer C et al. MRM 2018;79:1661–1673,
///   doi:10.1002/mrm.26830) found the best scores among compressed-sensing (L1/TV) methods, and
///   challenge 2.0 (Bilgic B et al. MRM 2021;86:1241–1255, doi:10.1002/mrm.28754) ranked iterative
///   TV-type methods first, direct inversions last, and found magnitude priors improve the scores.
///   So TV, NDI, RTS, MEDI and iLSQR (whose streak removal targets TKD/LSQR's cone artefacts,
///   Li W et al. NeuroImage 2015;108:111–122) must beat TKD in NRMSE and HFEN, with and without noise, and MEDI
///   (magnitude prior) must beat TV. TSVD must be worse than TKD: zeroing the cone instead of
///   clamping it lowers the low-frequency gain from 0.868 to 0.733 at δ = 0.15 (QSM.md §7.1–7.2).
/// - Ceilings: each method's measured figure (noted below) plus ~5 points, a regression guard.
///   The field, noise and methods are deterministic; FFTW's summation order moves the figures by
///   < 0.1 point, so 5 points only trips on a real change of behaviour.
///
/// Methods whose defaults do not reach the literature's ranking here are reported, not hidden:
/// identity Tikhonov (L2, not sparsity-regularised; the ranking claims are about L1/TV) is level
/// with TKD, at λ = 1e-2 and at its best λ (46.8 % on the head); the L-curve corner under-regularises
/// the head (the field is cut at the mask edge, so the curve has no sharp corner) and is near the best
/// λ on the sphere; RTS at QSM.jl's 4 LSMR steps is level with TKD, and beats it with 20 steps, which the
/// ranking test uses (4 steps of LSMR on D recover only ~0.5 of χ at 0.15 < |D| < 0.2 and ~0.83 at
/// 0.2–0.3, on the head and the sphere alike, and step 2 then holds those frequencies there); LSQR with
/// its fixed 1 % residual tolerance fits the noise at SNR 100 (semi-convergence); TGV-QSM at its
/// QSM.rs defaults is level with TKD where it answers without noise and worse at SNR 100 (it
/// starts from the Laplacian of the phase, which amplifies white noise), and loses 30 % of the
/// mask to its 3 erosions.
@Suite(.serialized) struct InversionAccuracyTests {
    /// The registry's methods plus labelled variants.
    static var methods: [(String, any DipoleInversion)] {
        var rts = RTS.Parameters(); rts.lsmrIterations = 20
        var nonlinear = TVADMM.Parameters(); nonlinear.dataTerm = .nonlinear
        var masked = TVADMM.Parameters(); masked.dataWeighting = .mask
        var lcurve = Tikhonov.Parameters(); lcurve.lambdaSelection = .lcurve
        var gradientLCurve = lcurve; gradientLCurve.regularizer = .gradient
        return InversionBench.registered + [("rts-lsmr20", RTS(rts)), ("tv-nonlinear", TVADMM(nonlinear)),
                                            ("tv-mask", TVADMM(masked)), ("tikhonov-lcurve", Tikhonov(lcurve)),
                                            ("tikhonov-gradient-lcurve", Tikhonov(gradientLCurve))]
    }

    static func expectBelow(_ rows: [String: InversionScore], _ ceilings: [String: Double], _ setting: String) {
        for (label, ceiling) in ceilings {
            guard let row = rows[label] else { Issue.record("\(label) missing"); continue }
            // TGV erodes its mask by design: bound it where it answered.
            let value = label == "tgv" ? row.nrmseCovered : row.nrmse
            #expect(value < ceiling, "\(label) NRMSE \(value) % ≥ \(ceiling) % (\(setting))")
        }
    }

    static func expectRanking(_ rows: [String: InversionScore], _ setting: String) throws {
        let tkd = try #require(rows["tkd"])
        for label in ["tv", "tv-nonlinear", "tv-mask", "ndi", "rts-lsmr20", "medi", "ilsqr"] {
            let row = try #require(rows[label])
            #expect(row.nrmse < tkd.nrmse, "\(label) NRMSE \(row.nrmse) % does not beat TKD \(tkd.nrmse) % (\(setting))")
            #expect(row.hfen < tkd.hfen, "\(label) HFEN \(row.hfen) % does not beat TKD \(tkd.hfen) % (\(setting))")
        }
        #expect(try #require(rows["medi"]).nrmse < (try #require(rows["tv"])).nrmse, "MEDI should beat TV (\(setting))")
        #expect(try #require(rows["tsvd"]).nrmse > tkd.nrmse, "TSVD should be worse than TKD (\(setting))")
    }

    /// Head, 64×78×68 at 2 mm. Measured (NRMSE %, noise-free / SNR 100): medi 8.1/14.6, lsqr
    /// 37.2/52.4, ndi 37.4/43.9, tv 39.4/39.5, tkd 46.4/49.4, rts 47.1/48.3, rts-lsmr20 32.3/37.2,
    /// tikhonov 48.0/49.6, tsvd 51.7/52.8, tv-nonlinear 39.4/39.5, medi-csf (MEDI+0, λ_CSF 100)
    /// 8.1/14.6, ilsqr 28.5/33.7, tv-mask (data term inside the mask only) 16.8/17.1; tgv (stepBalance 30) 92.0/94.5 over the mask, 47.1/67.4 where it answered
    /// (70 % coverage after its 3 erosions); tikhonov-lcurve (λ 6.8e-4) 52.0/58.2, tikhonov-gradient-lcurve
/// (λ 6.8e-5 / 4.6e-5) 173.8/181.8 (best gradient λ on the sweep, 2.2e-2: 49.5/50.2).
    @Test func headTrueLocalField() throws {
        let problem = InversionProblem.head
        var csf = MEDI.Parameters(); csf.lambdaCSF = 100
        let methods = Self.methods + [("medi-csf", MEDI(csf))]
        let clean = try InversionBench.run(methods, on: problem, field: problem.field)
        print(InversionBench.table("\(problem.name), true local field, noise-free", clean))
        let noisy = try InversionBench.run(methods, on: problem, field: problem.noisyField())
        print(InversionBench.table("\(problem.name), true local field, SNR 100 (σ_f \(problem.noiseSigma) ppm)", noisy))
        try Self.expectRanking(clean, "head, noise-free")
        // The true local field is not zero outside the brain (the superior sagittal sinus and the
        // cortex sit at the mask's edge); a data term on the padded grid asks Dχ = 0 there. Leaving
        // the outside free must help on the head (measured 39.4 → 16.8 %, 39.5 → 17.1 %).
        for rows in [clean, noisy] {
            #expect(try #require(rows["tv-mask"]).nrmse < (try #require(rows["tv"])).nrmse - 10)
        }
        try Self.expectRanking(noisy, "head, SNR 100")
        Self.expectBelow(clean, ["medi": 14, "lsqr": 43, "ndi": 43, "tv": 45, "tkd": 52, "rts": 52, "rts-lsmr20": 38,
                                 "tikhonov": 53, "tsvd": 57, "tgv": 51, "tv-nonlinear": 45, "medi-csf": 14, "ilsqr": 34, "tv-mask": 22,
                                 "tikhonov-lcurve": 57, "tikhonov-gradient-lcurve": 179], "head, noise-free")
        Self.expectBelow(noisy, ["medi": 20, "lsqr": 58, "ndi": 49, "tv": 45, "tkd": 55, "rts": 54, "rts-lsmr20": 43,
                                 "tikhonov": 55, "tsvd": 58, "tgv": 72, "tv-nonlinear": 45, "medi-csf": 20, "ilsqr": 39, "tv-mask": 22,
                                 "tikhonov-lcurve": 63, "tikhonov-gradient-lcurve": 187], "head, SNR 100")
    }

    /// Sphere with blobs, 48³. Measured (noise-free / SNR 100): medi 2.3/3.6, tv 25.8/25.8, tkd
    /// 29.2/30.4, rts 37.1/37.9, tikhonov 38.3/38.8, ndi 39.7/41.4, lsqr 39.7/42.0, tsvd 46.6/46.9,
    /// rts-lsmr20 20.4/22.3, tv-nonlinear 25.8/25.9, ilsqr 23.9/24.5, tv-mask 25.7/25.7, tgv (stepBalance 30) 33.0/34.3 where it answered (63 % coverage),
/// tikhonov-lcurve 23.8/28.4, tikhonov-gradient-lcurve 24.0/26.6.
    /// Smooth blobs without streaking-prone sources: the ranking claims TV and MEDI only.
    @Test func sphereTrueLocalField() throws {
        let problem = InversionProblem.sphere
        let clean = try InversionBench.run(Self.methods, on: problem, field: problem.field)
        print(InversionBench.table("\(problem.name), true local field, noise-free", clean))
        let noisy = try InversionBench.run(Self.methods, on: problem, field: problem.noisyField())
        print(InversionBench.table("\(problem.name), true local field, SNR 100 (σ_f \(problem.noiseSigma) ppm)", noisy))
        for (rows, setting) in [(clean, "sphere, noise-free"), (noisy, "sphere, SNR 100")] {
            let tkd = try #require(rows["tkd"])
            for label in ["tv", "medi"] {
                let row = try #require(rows[label])
                #expect(row.nrmse < tkd.nrmse && row.hfen < tkd.hfen, "\(label) does not beat TKD (\(setting))")
            }
            #expect(try #require(rows["tsvd"]).nrmse > tkd.nrmse, "TSVD should be worse than TKD (\(setting))")
        }
        let ceilings = ["medi": 8.0, "tv": 31, "tkd": 35, "rts": 43, "tikhonov": 44, "ndi": 47, "lsqr": 47, "tsvd": 52,
                        "rts-lsmr20": 27, "tgv": 39, "tv-nonlinear": 31, "ilsqr": 30, "tv-mask": 31,
                        "tikhonov-lcurve": 34, "tikhonov-gradient-lcurve": 32]
        Self.expectBelow(clean, ceilings, "sphere, noise-free")
        Self.expectBelow(noisy, ceilings, "sphere, SNR 100")
    }
}
