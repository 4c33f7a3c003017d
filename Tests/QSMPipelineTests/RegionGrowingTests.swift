import Testing
import QSMPipeline

@Suite struct RegionGrowingTests {
    /// A ramp of 0.9 rad/voxel along x (not periodic: Laplacian unwrapping cannot recover it) plus
    /// the smooth bumps, in a sphere of radius 18 on 40³; all neighbour differences < π.
    func rampPhase(_ grid: Grid, scale: Double = 1) -> [Double] {
        let bumps = smoothPhase(grid, amplitude: 20)
        return (0..<grid.count).map { i in scale * (0.9 * Double(i % grid.shape.x) + bumps[i]) }
    }

    /// Checks that `out − truth` is one multiple of 2π per region (to Float rounding of ≤ 80 rad,
    /// ~1e-5 rad; 1e-4 leaves headroom) and returns the distinct multiples.
    func checkExact(_ out: [Float], _ truth: [Double], _ mask: Mask) -> Set<Double> {
        var multiples = Set<Double>(), worst = 0.0
        for i in 0..<truth.count where mask.voxels[i] {
            let d = Double(out[i]) - truth[i]
            let k = (d / (2 * Double.pi)).rounded()
            multiples.insert(k)
            worst = max(worst, abs(d - 2 * Double.pi * k))
        }
        #expect(worst < 1e-4)
        return multiples
    }

    @Test func exactOnNoiselessSingleEcho() throws {
        let grid = Grid(shape: SIMD3(repeating: 40))
        let truth = rampPhase(grid)
        let mask = centralSphere(grid, radius: 18)
        let input = try Volume(grid: grid, voxels: wrapped(truth))
        let out = try RegionGrowingUnwrapping().apply(wrappedPhase: input, magnitude: nil, mask: mask, context: StageContext())
        #expect(checkExact(out.voxels, truth, mask).count == 1)
        // Laplacian unwrapping on the same data is not exact (the ramp is not periodic).
        let laplacian = try LaplacianUnwrapping().apply(wrappedPhase: input, magnitude: nil, mask: mask, context: StageContext())
        var worst = 0.0
        for i in 0..<grid.count where mask.voxels[i] {
            let d = Double(laplacian.voxels[i]) - truth[i]
            worst = max(worst, abs(d - 2 * Double.pi * (d / (2 * Double.pi)).rounded()))
        }
        #expect(worst > 0.1)
    }

    @Test func exactOnNoiselessMultiEchoWithPhaseOffset() throws {
        let grid = Grid(shape: SIMD3(repeating: 32))
        let echoTimes = [0.004, 0.008, 0.012, 0.016]
        let mask = centralSphere(grid, radius: 14)
        let base = rampPhase(grid, scale: 0.5)                  // phase at TE1 without φ0
        let offset = smoothPhase(grid, amplitude: 1.2)           // φ0 up to 1.32 rad
        var frames: [Volume<Float>] = [], truths: [[Double]] = []
        for te in echoTimes {
            let truth = (0..<grid.count).map { offset[$0] + base[$0] * te / echoTimes[0] }
            truths.append(truth)
            frames.append(try Volume(grid: grid, voxels: wrapped(truth)))
        }
        // Magnitude decaying with TE, and so weights that vary over the mask.
        let magnitude = try Volume.stacking(echoTimes.map { te in
            try Volume(grid: grid, voxels: (0..<grid.count).map { Float((1 + 0.3 * Double($0 % 7)) * Double.exp(-te / 0.03)) })
        })
        let out = try RegionGrowingUnwrapping().apply(wrappedPhase: try Volume.stacking(frames), magnitude: magnitude,
                                                      mask: mask, context: StageContext(echoTimes: echoTimes))
        // Each echo is exact up to one 2πk_e. The template's k_1 (the seed's wrap count) is not
        // identifiable; temporal unwrapping carries it consistently, k_e = k_1·TE_e/TE_1, so the
        // field is off by the constant 2πk_1/TE_1 (a uniform field, removed by background removal).
        // The ratio step from echo 1 to 2 errs by φ0·(TE2/TE1 − 1) ≤ 1.32 rad < π; extrapolation is exact.
        let multiples = (0..<4).map { checkExact(out.frame($0).voxels, truths[$0], mask) }
        #expect(multiples.allSatisfy { $0.count == 1 })
        let k1 = multiples[0].first ?? .nan
        for e in 1..<4 { #expect(multiples[e].first == k1 * echoTimes[e] / echoTimes[0]) }
    }

    @Test func eachDisconnectedRegionGetsItsOwnSeed() throws {
        let grid = Grid(shape: SIMD3(40, 20, 20))
        let truth = rampPhase(grid)
        var mask = Mask(grid: grid, repeating: false)
        for z in 2..<18 { for y in 2..<18 { for x in 0..<40 where x < 15 || x > 24 { mask.voxels[grid.index(x, y, z)] = true } } }
        let out = try RegionGrowingUnwrapping().apply(wrappedPhase: try Volume(grid: grid, voxels: wrapped(truth)),
                                                      magnitude: nil, mask: mask, context: StageContext())
        #expect(checkExact(out.voxels, truth, mask).count <= 2)
        #expect(out.voxels[grid.index(30, 10, 10)] != 0)
    }

    @Test func templateEchoMustExist() throws {
        let grid = Grid(shape: SIMD3(8, 8, 8))
        var p = RegionGrowingUnwrapping.Parameters()
        p.templateEcho = 3
        #expect(throws: QSMError.invalidParameter("unwrap.templateEcho", "echo 3 does not exist (1 echoes)")) {
            try RegionGrowingUnwrapping(p).apply(wrappedPhase: Volume(zeros: grid), magnitude: nil,
                                                 mask: Mask(grid: grid, repeating: true), context: StageContext())
        }
    }
}
