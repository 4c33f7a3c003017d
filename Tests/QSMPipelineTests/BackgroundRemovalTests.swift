import Testing
import QSMPipeline

/// Each method on `SyntheticHead` (64³, 1 mm, brain radius 20 mm; background 20–50× the local
/// field's RMS inside the mask, so doing nothing scores an error of 20–50). Errors are demeaned
/// relative RMS errors of the local field inside the method's own valid mask ("all") and inside
/// the central 12 mm sphere ∩ valid mask ("core"). Measured figures (release, Float, this grid):
///   sharp 0.045 / 0.029, vsharp 0.266 / 0.108, resharp 0.116, ismv (defaults) 0.398 / 0.355,
///   ismv (converged, tolerance 1e-6) 0.088 / 0.021, pdf 0.256 / 0.052, lbv 0.101 / 0.020.
/// Bounds are the measured figure plus ~30–50 % headroom (rounding, thread-count-dependent
/// summation order, small implementation changes); the reason each method errs is given per test.
@Suite struct BackgroundRemovalTests {
    static let head = SyntheticHead()

    func run(_ method: some BackgroundRemoval) throws -> (all: Double, core: Double, coverage: Double) {
        let head = Self.head
        let result = try method.apply(totalField: head.totalField, mask: head.mask, context: StageContext())
        var outside = 0
        for i in 0..<result.mask.voxels.count where result.mask.voxels[i] && !head.mask.voxels[i] { outside += 1 }
        #expect(outside == 0, "valid mask must lie inside the input mask")
        var core = centralSphere(head.grid, radius: 12)
        for i in 0..<core.voxels.count { core.voxels[i] = core.voxels[i] && result.mask.voxels[i] }
        let all = demeanedRelativeError(result.field, head.localField, in: result.mask)
        let inner = demeanedRelativeError(result.field, head.localField, in: core)
        let coverage = Double(result.mask.insideCount) / Double(head.mask.insideCount)
        print("bgremove \(type(of: method).name): error all \(all), core \(inner), coverage \(coverage)")
        return (all, inner, coverage)
    }

    @Test func sharp() throws {
        let r = try run(SHARP())
        // Residual error: TSVD (threshold 0.05) zeroes the lowest local-field frequencies, and the
        // valid region is only the 14 mm core where the local sources sit. Measured 0.045.
        #expect(r.all < 0.07)
        #expect(r.coverage > 0.30 && r.coverage < 0.40)   // (14/20)³ = 0.343 after a 6 mm erosion
    }

    @Test func vsharp() throws {
        let r = try run(VSHARP())
        // Rim voxels were high-passed with small radii but are deconvolved with the 18 mm kernel
        // (QSM.jl's scheme), so the error concentrates at the rim: measured 0.266 all, 0.108 core.
        #expect(r.all < 0.35)
        #expect(r.core < 0.15)
        #expect(r.coverage > 0.70)                        // (18/20)³ = 0.729 after a 2 mm erosion
    }

    @Test func resharp() throws {
        let r = try run(RESHARP())
        // 30 CG iterations (QSM.rs cap) with λ = 1e-4 do not reach the TSVD solution's accuracy on the
        // lowest frequencies: measured 0.116.
        #expect(r.all < 0.17)
        #expect(r.coverage > 0.30 && r.coverage < 0.40)
    }

    @Test func ismvWithDefaults() throws {
        let r = try run(ISMV())
        // QSM.jl's tolerance 1e-3 is relative to ‖m·Δb‖, which the strong background dominates, so
        // the iteration stops long before the harmonic extension has converged: measured 0.398.
        #expect(r.all < 0.5)
    }

    @Test func ismvConverged() throws {
        var p = ISMV.Parameters()
        p.tolerance = 1e-6
        p.maxIterations = 5000
        let r = try run(ISMV(p))
        // Converged, the only error is the local field inside the 2 mm rim, which iSMV takes as
        // boundary value of the background: measured 0.088 all, 0.021 core.
        #expect(r.all < 0.13)
        #expect(r.core < 0.04)
    }

    @Test func pdf() throws {
        let r = try run(PDF())
        // Local fields that exterior dipoles can partly mimic (non-orthogonality, Liu et al. 2011)
        // leak into the background estimate near the boundary: measured 0.256 all, 0.052 core.
        #expect(r.all < 0.35)
        #expect(r.core < 0.08)
        #expect(r.coverage == 1)                          // PDF does not erode
    }

    @Test func lbv() throws {
        let r = try run(LBV())
        // The Dirichlet condition Δb_local = 0 on the mask's boundary layer is where LBV errs (the true
        // local field is not zero there); the error decays inward: measured 0.101 all, 0.020 core.
        #expect(r.all < 0.15)
        #expect(r.core < 0.03)
        #expect(r.coverage > 0.85)                        // only the one-voxel boundary layer is lost
    }
}
