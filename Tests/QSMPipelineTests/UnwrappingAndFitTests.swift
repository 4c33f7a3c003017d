import Testing
import QSMPipeline

/// A smooth phase with many wraps: a Gaussian bump of `amplitude` rad (σ = 8 voxels) plus a tenth
/// of that in a second bump, on 48³. Every neighbour difference is below π (max |∇φ| ≈ 30/8·e^-½ ≈ 2.3 rad).
func smoothPhase(_ grid: Grid, amplitude: Double = 30) -> [Double] {
    let c = (SIMD3<Double>(grid.shape) - 1) / 2
    var out = [Double](repeating: 0, count: grid.count)
    for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
        let d = SIMD3(Double(x), Double(y), Double(z)) - c
        let e = d - SIMD3(5, -4, 3)
        out[grid.index(x, y, z)] = amplitude * Double.exp(-(d * d).sum() / 128) + amplitude / 10 * Double.exp(-(e * e).sum() / 50)
    } } }
    return out
}

func wrapped(_ phase: [Double]) -> [Float] {
    phase.map { Float($0 - 2 * Double.pi * ($0 / (2 * Double.pi)).rounded()) }
}

@Suite struct LaplacianUnwrappingTests {
    @Test func recoversSmoothPhaseUpToConstantMultipleOfTwoPi() throws {
        let grid = Grid(shape: SIMD3(repeating: 48))
        let truth = smoothPhase(grid)
        let mask = centralSphere(grid, radius: 20)
        let input = try Volume(grid: grid, voxels: wrapped(truth))
        #expect(Set(input.voxels.map { ($0 * 1000).rounded() }).count > 100)
        let out = try LaplacianUnwrapping().apply(wrappedPhase: input, magnitude: nil, mask: mask, context: StageContext())
        // All wrapped differences equal the true differences, so the wrapped Laplacian is the true
        // discrete Laplacian and the periodic Poisson solve returns φ − mean(φ) up to Float FFT
        // rounding (measured 7.5e-6 rad; 1e-6 × 30 rad × log n); the congruence step then restores φ mod 2π.
        var k: Double? = nil, worst = 0.0
        for i in 0..<grid.count where mask.voxels[i] {
            let d = Double(out.voxels[i]) - truth[i]
            let multiple = (d / (2 * Double.pi)).rounded()
            if k == nil { k = multiple }
            #expect(multiple == k)
            worst = max(worst, abs(d - 2 * Double.pi * multiple))
        }
        print("laplacian unwrapping: max |error| mod 2π = \(worst) rad, k = \(k ?? .nan)")
        #expect(worst < 1e-4)
    }
}

extension LaplacianUnwrappingTests {
    /// The wrapped Laplacian sees only wrapped neighbour differences, so a phase given unwrapped
    /// (steep: neighbour differences up to ~12 rad, beyond the 3π of two wrapped phases, which takes
    /// the general wrapping path) and the same phase wrapped must unwrap to the same result mod 2π.
    /// Tolerance 1e-3 rad: the inputs differ by multiples of 2π rounded to Float (~1e-6 rad per
    /// value at these magnitudes), which the Poisson solve spreads but does not amplify much.
    @Test func unwrappedAndWrappedInputsAgree() throws {
        let grid = Grid(shape: SIMD3(40, 36, 32))
        let steep = smoothPhase(grid, amplitude: 150)
        let mask = centralSphere(grid, radius: 14)
        let fromSteep = try LaplacianUnwrapping().apply(wrappedPhase: try Volume(grid: grid, voxels: steep.map { Float($0) }),
                                                        magnitude: nil, mask: mask, context: StageContext())
        let fromWrapped = try LaplacianUnwrapping().apply(wrappedPhase: try Volume(grid: grid, voxels: wrapped(steep)),
                                                          magnitude: nil, mask: mask, context: StageContext())
        var largest = 0.0
        for i in 1..<grid.count where abs(steep[i] - steep[i - 1]) > 3 * Double.pi { largest = max(largest, abs(steep[i] - steep[i - 1])) }
        #expect(largest > 3 * Double.pi, "the test needs differences beyond 3π")
        var worst = 0.0
        for i in 0..<grid.count where mask.voxels[i] {
            let d = Double(fromSteep.voxels[i] - fromWrapped.voxels[i])
            worst = max(worst, abs(d - 2 * Double.pi * (d / (2 * Double.pi)).rounded()))
        }
        #expect(worst < 1e-3, "max |Δ| mod 2π = \(worst) rad")
    }
}

extension LaplacianUnwrappingTests {
    /// With random phase outside the mask (no signal there) the result is no longer φ + 2πk, but
    /// inside the mask's interior the error is discretely harmonic: there the wrapped Laplacian
    /// equals the true one, so ∇²(φ_u − φ) = 0 and background removal (which removes harmonic
    /// fields) removes the error too. Checked with the same 7-point Laplacian: |∇²error| ≤ 2e-4 rad
    /// (Float rounding of ~30 rad phases through two FFTs, ~1e-5, times the stencil's 12).
    @Test func errorIsHarmonicInsideTheMaskWhenOutsideIsNoise() throws {
        let n = 48
        let grid = Grid(shape: SIMD3(repeating: n))
        let truth = smoothPhase(grid)
        let mask = centralSphere(grid, radius: 18)
        var generator = SeededGenerator(seed: 5)
        var input = wrapped(truth)
        for i in 0..<grid.count where !mask.voxels[i] { input[i] = Float.random(in: -Float.pi..<Float.pi, using: &generator) }
        let out = try LaplacianUnwrapping().apply(wrappedPhase: try Volume(grid: grid, voxels: input), magnitude: nil,
                                                  mask: mask, context: StageContext())
        let error = (0..<grid.count).map { Double(out.voxels[$0]) - truth[$0] }
        let interior = centralSphere(grid, radius: 16)       // two voxels inside the mask boundary
        var worstLaplacian = 0.0, spread = 0.0
        let mean = error.indices.filter { interior.voxels[$0] }.map { error[$0] }.reduce(0, +) / Double(interior.insideCount)
        for z in 1..<n - 1 { for y in 1..<n - 1 { for x in 1..<n - 1 {
            let i = grid.index(x, y, z)
            guard interior.voxels[i] else { continue }
            let l = error[i - 1] + error[i + 1] + error[i - n] + error[i + n] + error[i - n * n] + error[i + n * n] - 6 * error[i]
            worstLaplacian = max(worstLaplacian, abs(l))
            spread = max(spread, abs(error[i] - mean))
        } } }
        print("laplacian unwrapping with noise outside: max |∇²error| \(worstLaplacian), error spread \(spread) rad")
        #expect(spread > 0.01)              // the noise does change the result…
        #expect(worstLaplacian < 2e-4)      // …only by a harmonic field inside the mask (measured 3.2e-5)
    }
}

@Suite struct WeightedLinearFitTests {
    static let echoTimes = [0.004, 0.008, 0.012, 0.016]

    /// Phases φ_n = φ0 + 2π·γ̄·B0·Δb·TE_n of a field up to ±0.6 ppm at 3 T (up to 12 rad unwrapped).
    func synthesise(offset: Bool) throws -> (phase: Volume<Float>, field: [Double], offset: [Double], mask: Mask) {
        let grid = Grid(shape: SIMD3(16, 12, 10))
        var field = [Double](repeating: 0, count: grid.count), phi0 = field
        var generator = SeededGenerator(seed: 7)
        for i in 0..<grid.count {
            field[i] = Double.random(in: -0.6...0.6, using: &generator)
            phi0[i] = offset ? Double.random(in: -3...3, using: &generator) : 0
        }
        let context = StageContext(echoTimes: Self.echoTimes)
        var frames: [Volume<Float>] = []
        for te in Self.echoTimes {
            frames.append(try Volume(grid: grid, voxels: (0..<grid.count).map {
                Float(phi0[$0] + context.conventions.phase(fromPPM: field[$0], echoTime: te, fieldStrength: 3))
            }))
        }
        return (try Volume.stacking(frames), field, phi0, Mask(grid: grid, repeating: true))
    }

    @Test(arguments: [false, true]) func recoversKnownField(withOffset: Bool) throws {
        let data = try synthesise(offset: withOffset)
        let context = StageContext(echoTimes: Self.echoTimes)
        var p = WeightedLinearFit.Parameters()
        p.estimateOffset = withOffset
        let fit = try WeightedLinearFit(p).apply(unwrappedPhase: data.phase, magnitude: nil, mask: data.mask, context: context)
        var worstField = 0.0, worstOffset = 0.0, worstNoise = 0.0
        for i in 0..<data.field.count {
            worstField = max(worstField, abs(Double(fit.totalField.voxels[i]) - data.field[i]))
            worstOffset = max(worstOffset, abs(Double(fit.phaseOffset.voxels[i]) - data.offset[i]))
            worstNoise = max(worstNoise, Double(fit.noise.voxels[i]))
        }
        // Float phase of ≤ 15 rad carries ~1e-6 rad rounding; over a 12 ms TE span that is ~1e-4 rad/s,
        // i.e. ~1e-7 ppm. 1e-5 ppm and 1e-4 rad leave two orders of headroom.
        #expect(worstField < 1e-5)
        #expect(worstOffset < 1e-4)
        #expect(worstNoise < 1e-5)         // noise-free: residuals are rounding only
    }

    @Test func throughOriginFitIsBiasedByUnremovedOffset() throws {
        let data = try synthesise(offset: true)
        var p = WeightedLinearFit.Parameters()
        p.estimateOffset = false
        let fit = try WeightedLinearFit(p).apply(unwrappedPhase: data.phase, magnitude: nil, mask: data.mask,
                                                 context: StageContext(echoTimes: Self.echoTimes))
        let error = zip(fit.totalField.voxels, data.field).map { abs(Double($0) - $1) }.max()!
        // φ0 up to 3 rad aliases into ω as 3·ΣTE/ΣTE² ≈ 3/0.0125 rad/s ≈ 0.3 ppm.
        #expect(error > 0.05)
    }

    @Test func noiseMapMatchesEmpiricalScatter() throws {
        // Uniform weights, Gaussian phase noise σ = 0.05 rad: the predicted SD of Δb is
        // σ/√Σ(TE−T̄)²·ppm-per-rad/s for every voxel; the empirical SD over 4000 voxels must agree
        // within ~7 % (sampling error of an SD from 4000 draws is ~1.1 %; the residual-based
        // per-voxel σ̂ with 2 degrees of freedom is unbiased in variance, not in SD, hence the mean of σ̂² is compared).
        let grid = Grid(shape: SIMD3(20, 20, 10))
        let noise = CounterGaussian(seed: 3)
        let context = StageContext(echoTimes: Self.echoTimes)
        var frames: [Volume<Float>] = []
        for (e, te) in Self.echoTimes.enumerated() {
            frames.append(try Volume(grid: grid, voxels: (0..<grid.count).map {
                Float(context.conventions.phase(fromPPM: 0.2, echoTime: te, fieldStrength: 3)
                      + 0.05 * noise.pair(stream: UInt64(e), index: UInt64($0)).0)
            }))
        }
        var p = WeightedLinearFit.Parameters()
        p.weighting = .uniform
        let fit = try WeightedLinearFit(p).apply(unwrappedPhase: try Volume.stacking(frames), magnitude: nil,
                                                 mask: Mask(grid: grid, repeating: true), context: context)
        let n = Double(grid.count)
        let mean = fit.totalField.voxels.reduce(0.0) { $0 + Double($1) } / n
        let empirical = (fit.totalField.voxels.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)).squareRoot()
        let predicted = (fit.noise.voxels.reduce(0.0) { $0 + Double($1) * Double($1) } / n).squareRoot()
        let tMean = Self.echoTimes.reduce(0, +) / 4
        let exact = 0.05 / Self.echoTimes.reduce(0.0) { $0 + ($1 - tMean) * ($1 - tMean) }.squareRoot()
            * abs(context.ppmPerRadianPerSecond)
        print("fit noise: empirical \(empirical) ppm, mean predicted \(predicted), exact \(exact)")
        #expect(abs(mean - 0.2) < 3 * exact / n.squareRoot() + 1e-6)
        #expect(abs(empirical / exact - 1) < 0.05)
        #expect(abs(predicted / exact - 1) < 0.07)
    }

    @Test func rejectsEchoTimeMismatch() throws {
        let data = try synthesise(offset: false)
        #expect(throws: QSMError.mismatch("--te", "3 echo times for 4 phase echoes")) {
            try WeightedLinearFit().apply(unwrappedPhase: data.phase, magnitude: nil, mask: data.mask,
                                          context: StageContext(echoTimes: [0.004, 0.008, 0.012]))
        }
        #expect(throws: QSMError.invalidOption("--te", "4.0 is not in seconds; did you mean 0.004?")) {
            try WeightedLinearFit().apply(unwrappedPhase: data.phase, magnitude: nil, mask: data.mask,
                                          context: StageContext(echoTimes: [4, 8, 12, 16]))
        }
    }
}
