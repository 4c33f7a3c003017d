import Testing
import QSMPhantom
import QSMTestSupport

/// The wrapped difference a − b in (−π, π].
func wrappedDifference(_ a: Double, _ b: Double) -> Double {
    var d = (a - b).truncatingRemainder(dividingBy: 2 * .pi)
    if d > .pi { d -= 2 * .pi } else if d <= -.pi { d += 2 * .pi }
    return d
}

@Suite("Signal model")
struct SignalModelTests {
    static let grid = Grid(shape: SIMD3(repeating: 32), voxelSize: SIMD3(repeating: 1))

    static func sphere(chi: Double = 0.1) throws -> Phantom {
        var settings = AnalyticPhantomSettings()
        settings.chi = chi
        settings.radius = 5
        return try Phantom.sphere(grid: grid, settings: settings)
    }

    /// Phase = Δb·2π·γ̄·B0·TE exactly (no wrapping for this small field), magnitude = M0·exp(−TE·R2*).
    @Test func phaseIsFieldTimesTwoPiGammaB0TE() throws {
        let phantom = try Self.sphere()
        var acquisition = AcquisitionSettings()
        acquisition.echoTimes = [0.005, 0.010, 0.020]
        acquisition.fieldStrength = 7
        let scan = try Simulator(acquisition: acquisition).run(phantom)
        let n = Self.grid.count
        var worstPhase = 0.0, worstMagnitude = 0.0, largestPhase = 0.0
        for (echo, te) in acquisition.echoTimes.enumerated() {
            for i in 0..<n {
                // 2π·42.5775e6·7·0.02·1e-6 = 37.45 rad/ppm; |Δb| ≤ 0.034 ppm, so |φ| < 1.3 rad: no wraps.
                let expected = 2 * Double.pi * 42.5775 * 7 * te * Double(scan.truth.totalField.voxels[i])
                worstPhase = max(worstPhase, abs(Double(scan.phase.voxels[echo * n + i]) - expected))
                largestPhase = max(largestPhase, abs(expected))
                let amplitude = Double(phantom.m0.voxels[i]) * Double.exp(-te * Double(phantom.r2star.voxels[i]))
                worstMagnitude = max(worstMagnitude, abs(Double(scan.magnitude.voxels[echo * n + i]) - amplitude))
            }
        }
        // Float signal components: atan2 and |·| accurate to a few ulp of 1 (≈ 3e-7); 2e-6 is headroom.
        #expect(worstPhase < 2e-6, "phase error \(worstPhase)")
        #expect(worstMagnitude < 2e-6, "magnitude error \(worstMagnitude)")
        #expect(largestPhase > 0.5)
        #expect(scan.noiseSigma == [0, 0, 0])
    }

    @Test func reversedPhaseSignNegatesPhase() throws {
        let phantom = try Self.sphere()
        var acquisition = AcquisitionSettings()
        let plus = try Simulator(acquisition: acquisition).run(phantom)
        acquisition.conventions.phaseSign = -1
        let minus = try Simulator(acquisition: acquisition).run(phantom)
        let worst = zip(plus.phase.voxels, minus.phase.voxels).map { abs(Double($0) + Double($1)) }.max()!
        #expect(worst < 1e-6)
        #expect(plus.phase.voxels.map { abs($0) }.max()! > 0.1)
    }

    /// Measured peak SNR (max|S| over the noise σ estimated from 2·32³ samples) within 5 % of the
    /// requested value; the estimate's own standard error is 1/√(2·2·32768) ≈ 0.3 %.
    @Test(arguments: [5.0, 40.0])
    func measuredSNRMatchesRequested(_ snr: Double) throws {
        let phantom = try Self.sphere()
        var acquisition = AcquisitionSettings()
        acquisition.echoTimes = [0.004, 0.02]
        let clean = try Simulator(acquisition: acquisition).run(phantom)
        acquisition.snr = snr
        acquisition.seed = 11
        let noisy = try Simulator(acquisition: acquisition).run(phantom)
        let n = Self.grid.count
        for echo in 0..<2 {
            var power = 0.0, peak = 0.0
            for i in 0..<n {
                let j = echo * n + i
                let (m0, p0) = (Double(clean.magnitude.voxels[j]), Double(clean.phase.voxels[j]))
                let (m1, p1) = (Double(noisy.magnitude.voxels[j]), Double(noisy.phase.voxels[j]))
                let re = m1 * Double.cos(p1) - m0 * Double.cos(p0), im = m1 * Double.sin(p1) - m0 * Double.sin(p0)
                power += re * re + im * im
                peak = max(peak, m0)
            }
            let sigma = (power / Double(2 * n)).squareRoot()
            let measured = peak / sigma
            #expect(abs(measured / snr - 1) < 0.05, "echo \(echo + 1): measured SNR \(measured) for \(snr)")
            #expect(abs(noisy.noiseSigma[echo] - peak / snr) < 1e-6 * peak)
        }
    }

    @Test func sameSeedIsIdenticalOtherSeedDiffers() throws {
        let phantom = try Self.sphere()
        var acquisition = AcquisitionSettings()
        acquisition.snr = 10
        acquisition.seed = 3
        let a = try Simulator(acquisition: acquisition).run(phantom)
        let b = try Simulator(acquisition: acquisition).run(phantom)
        acquisition.seed = 4
        let c = try Simulator(acquisition: acquisition).run(phantom)
        #expect(a.phase.voxels.map(\.bitPattern) == b.phase.voxels.map(\.bitPattern))
        #expect(a.magnitude.voxels.map(\.bitPattern) == b.magnitude.voxels.map(\.bitPattern))
        let differing = zip(a.phase.voxels, c.phase.voxels).filter { $0 != $1 }.count
        #expect(differing > a.phase.voxels.count * 9 / 10)
    }

    /// Noise depends on (seed, echo, voxel) only: one thread and many threads give the same bits.
    @Test func noiseIsIndependentOfThreadCount() {
        let base = [Complex<Float>](repeating: Complex(1, 0), count: 50_000)
        let saved = Parallelism.threadCount
        defer { Parallelism.threadCount = saved }
        var results: [[UInt32]] = []
        for threads in [1, 2, 7] {
            Parallelism.threadCount = threads
            var signal = base
            SignalModel.addNoise(&signal, sigma: 0.3, seed: 99, echo: 2)
            results.append(signal.flatMap { [$0.real.bitPattern, $0.imaginary.bitPattern] })
        }
        #expect(results[0] == results[1])
        #expect(results[0] == results[2])
        #expect(results[0] != base.flatMap { [$0.real.bitPattern, $0.imaginary.bitPattern] })
    }

    /// A field that is exactly a second-order polynomial is removed completely by the shim fit.
    @Test func shimRemovesSecondOrderPolynomial() throws {
        var field = Volume<Float>(zeros: Self.grid)
        let mask = try Self.sphere().mask
        for z in 0..<32 { for y in 0..<32 { for x in 0..<32 {
            let (u, v, w) = (Double(x - 16) / 16, Double(y - 16) / 16, Double(z - 16) / 16)
            field[x, y, z] = Float(0.3 + 0.2 * u - 0.1 * w + 0.5 * u * u - 0.25 * v * w + 0.4 * w * w)
        } } }
        let fit = try SignalModel.secondOrderFit(field, mask: mask)
        let worst = zip(fit.voxels, field.voxels).map { abs($0 - $1) }.max()!
        // Float input, Double solve: residual at Float rounding of values ≤ 1.5.
        #expect(worst < 1e-5, "worst \(worst)")
    }

    @Test func shimmedTotalFieldHasNoSecondOrderComponent() throws {
        var settings = AnalyticPhantomSettings()
        settings.radius = 5
        let grid = Grid(shape: SIMD3(repeating: 32), voxelSize: SIMD3(repeating: 1))
        var phantom = try Phantom.sphere(grid: grid, settings: settings)
        // Shrink the mask so the sphere's field has a sizeable smooth part inside it.
        for z in 0..<32 { for y in 0..<32 { for x in 0..<32 {
            phantom.mask[x, y, z] = phantom.mask[x, y, z] && x >= 16
        } } }
        var acquisition = AcquisitionSettings()
        acquisition.shim = true
        let scan = try Simulator(acquisition: acquisition).run(phantom)
        let residualFit = try SignalModel.secondOrderFit(scan.truth.totalField, mask: phantom.mask)
        let inside = (0..<grid.count).filter { phantom.mask.voxels[$0] }
        let fitSize = inside.map { abs(residualFit.voxels[$0]) }.max()!
        let fieldSize = inside.map { abs(scan.truth.totalField.voxels[$0]) }.max()!
        #expect(fitSize < 1e-4 * fieldSize + 1e-7, "remaining polynomial \(fitSize) vs field \(fieldSize)")
        // total = local + background still holds.
        let worst = (0..<grid.count).map {
            abs(scan.truth.totalField.voxels[$0] - scan.truth.localField.voxels[$0] - scan.truth.backgroundField.voxels[$0])
        }.max()!
        #expect(worst < 1e-7)
    }

    /// φ0 appears unchanged in every echo and spans about π over the mask.
    @Test func phaseOffsetIsEchoIndependent() throws {
        let phantom = try Self.sphere()
        var acquisition = AcquisitionSettings()
        acquisition.echoTimes = [0.004, 0.008]
        let plain = try Simulator(acquisition: acquisition).run(phantom)
        acquisition.phaseOffset = true
        let offset = try Simulator(acquisition: acquisition).run(phantom)
        let n = Self.grid.count
        var worst = 0.0
        for echo in 0..<2 { for i in 0..<n {
            let d = wrappedDifference(Double(offset.phase.voxels[echo * n + i]), Double(plain.phase.voxels[echo * n + i]))
            worst = max(worst, abs(wrappedDifference(d, Double(offset.truth.phaseOffset.voxels[i]))))
        } }
        #expect(worst < 1e-5)
        let inside = (0..<n).filter { phantom.mask.voxels[$0] }.map { offset.truth.phaseOffset.voxels[$0] }
        let span = Double(inside.max()! - inside.min()!)
        #expect(span > 0.5 * .pi && span < 3 * .pi, "span \(span)")
    }

    /// A complex exponential below the acquired Nyquist limit survives k-space cropping exactly:
    /// acquired voxel j holds the phantom's value at voxel 2j.
    @Test func kSpaceCropKeepsBandLimitedSignal() throws {
        let fine = Grid(shape: SIMD3(32, 24, 16), voxelSize: SIMD3(0.5, 0.5, 1))
        var data = [Complex<Float>](repeating: .zero, count: fine.count)
        for z in 0..<16 { for y in 0..<24 { for x in 0..<32 {
            let angle = 2 * Double.pi * (3.0 * Double(x) / 32 - 2.0 * Double(y) / 24 + 1.0 * Double(z) / 16)
            data[fine.index(x, y, z)] = Complex(Float(0.7 * Double.cos(angle)), Float(0.7 * Double.sin(angle)))
        } } }
        let small = SIMD3(16, 12, 8)
        let cropped = try SignalModel.cropKSpace(data, grid: fine, to: small)
        let grid = SignalModel.croppedGrid(fine, to: small)
        #expect(grid.voxelSize == SIMD3(1, 1, 2))
        var worst: Float = 0
        for z in 0..<8 { for y in 0..<12 { for x in 0..<16 {
            let a = cropped[grid.index(x, y, z)], b = data[fine.index(2 * x, 2 * y, 2 * z)]
            worst = max(worst, (a - b).length)
        } } }
        #expect(worst < 1e-5, "worst \(worst)")
    }

    /// A cropped acquisition keeps amplitudes and the field of smooth regions.
    @Test func croppedScanMatchesTruthAwayFromEdges() throws {
        var settings = AnalyticPhantomSettings()
        settings.radius = 8
        let phantom = try Phantom.sphere(grid: Grid(shape: SIMD3(repeating: 64), voxelSize: SIMD3(repeating: 0.5)), settings: settings)
        var acquisition = AcquisitionSettings()
        acquisition.acquiredShape = SIMD3(repeating: 32)
        acquisition.echoTimes = [0.01]
        let scan = try Simulator(acquisition: acquisition).run(phantom)
        #expect(scan.grid.shape == SIMD3(repeating: 32))
        #expect(scan.grid.voxelSize == SIMD3(repeating: 1))
        #expect(abs(scan.grid.affine.columnNorms.x - 1) < 1e-12)
        let expectedAmplitude = Float(Double.exp(-0.01 * 20))
        var worstAmplitude: Float = 0, worstField = 0.0, checked = 0
        for z in 0..<32 { for y in 0..<32 { for x in 0..<32 {
            let p = (SIMD3<Double>(Double(x), Double(y), Double(z)) * 2 - 31.5) * 0.5
            let r = (p * p).sum().squareRoot()
            guard r > 13 && r < 14 else { continue }   // well outside the sphere (R = 8 mm), inside the FOV
            let i = scan.grid.index(x, y, z)
            worstAmplitude = max(worstAmplitude, abs(scan.magnitude.voxels[i] - expectedAmplitude))
            let field = scan.conventions.ppm(fromPhase: Double(scan.phase.voxels[i]), echoTime: 0.01, fieldStrength: 3)
            worstField = max(worstField, abs(field - Double(scan.truth.totalField.voxels[i])))
            checked += 1
        } } }
        #expect(checked > 100)
        // Gibbs ringing from the sphere's edge (≥ 5 mm away) in the cropped signal: bound 1 % of the
        // amplitude and 2 % of the largest field Δχ/3 = 0.033 ppm.
        #expect(worstAmplitude < 0.01 * expectedAmplitude, "amplitude error \(worstAmplitude)")
        #expect(worstField < 0.02 * 0.1 / 3, "field error \(worstField)")
    }

    @Test func invalidAcquisitionsThrow() throws {
        let phantom = try Self.sphere()
        for change in [{ (a: inout AcquisitionSettings) in a.echoTimes = [] },
                       { $0.echoTimes = [4, 8] }, { $0.echoTimes = [0.008, 0.004] },
                       { $0.snr = 0 }, { $0.snr = -3 }, { $0.fieldStrength = 0 }] as [(inout AcquisitionSettings) -> Void] {
            var acquisition = AcquisitionSettings()
            change(&acquisition)
            #expect(throws: QSMError.self) { try Simulator(acquisition: acquisition).run(phantom) }
        }
        #expect(throws: QSMError.invalidOption("--te", "4.0 is not in seconds; did you mean 0.004?")) {
            var acquisition = AcquisitionSettings()
            acquisition.echoTimes = [4]
            try acquisition.validate()
        }
    }
}
