import QSMCore
import QSMTestSupport
import Testing

/// The FFT wrapper against a naive O(N²) DFT computed in Double, for Float and Double transforms.
@Suite struct FFTTests {
    static let shapes: [SIMD3<Int>] = [SIMD3(6, 5, 7), SIMD3(8, 8, 4), SIMD3(1, 3, 2)]

    /// Naive forward DFT (sign −1) of a complex array of `shape`, x fastest, in Double.
    static func naiveDFT(_ input: [Complex<Double>], shape: SIMD3<Int>, sign: Double = -1) -> [Complex<Double>] {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        var out = [Complex<Double>](repeating: .zero, count: input.count)
        for kz in 0..<nz { for ky in 0..<ny { for kx in 0..<nx {
            var sum = Complex<Double>.zero
            for z in 0..<nz { for y in 0..<ny { for x in 0..<nx {
                let phase = sign * 2 * Double.pi *
                    (Double(kx * x) / Double(nx) + Double(ky * y) / Double(ny) + Double(kz * z) / Double(nz))
                sum += input[x + nx * (y + ny * z)] * Complex(.cos(phase), .sin(phase))
            } } }
            out[kx + nx * (ky + ny * kz)] = sum
        } } }
        return out
    }

    static func randomReal(_ count: Int, seed: UInt64) -> [Double] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Double.random(in: -1...1, using: &g) }
    }

    @Test(arguments: Precision.allCases, shapes)
    func realToComplexMatchesNaiveDFT(_ precision: Precision, _ shape: SIMD3<Int>) throws {
        switch precision {
        // Errors of an FFT grow like ε·log2(N)·‖x‖; N ≤ 256 values of magnitude ≤ 1 give sums
        // of size ≤ 256, so 1e-4 (Float, ε = 1.2e-7) and 1e-11 (Double) leave ample headroom.
        case .single: try checkRealToComplex(Float.self, shape, tolerance: 1e-4)
        case .double: try checkRealToComplex(Double.self, shape, tolerance: 1e-11)
        }
    }

    func checkRealToComplex<T: FFTScalar>(_: T.Type, _ shape: SIMD3<Int>, tolerance: Double) throws {
        let fft = try FFT<T>(shape: shape)
        let input = Self.randomReal(fft.count, seed: 7)
        let spectrum = fft.forward(input.map { T($0) })
        let reference = Self.naiveDFT(input.map { Complex($0, 0) }, shape: shape)
        let hx = shape.x / 2 + 1
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<hx {
            let got = spectrum[x + hx * (y + shape.y * z)]
            let want = reference[x + shape.x * (y + shape.y * z)]
            #expect(abs(Double(got.real) - want.real) < tolerance)
            #expect(abs(Double(got.imaginary) - want.imaginary) < tolerance)
        } } }
        // Round trip: inverse(forward(x)) = x (normalised inverse).
        let back = fft.inverse(spectrum)
        for i in 0..<fft.count { #expect(abs(Double(back[i]) - input[i]) < tolerance) }
    }

    @Test(arguments: Precision.allCases, shapes)
    func complexMatchesNaiveDFT(_ precision: Precision, _ shape: SIMD3<Int>) throws {
        switch precision {
        case .single: try checkComplex(Float.self, shape, tolerance: 1e-4)
        case .double: try checkComplex(Double.self, shape, tolerance: 1e-11)
        }
    }

    func checkComplex<T: FFTScalar>(_: T.Type, _ shape: SIMD3<Int>, tolerance: Double) throws {
        let fft = try FFT<T>(shape: shape)
        let re = Self.randomReal(fft.count, seed: 11), im = Self.randomReal(fft.count, seed: 12)
        let input = (0..<fft.count).map { Complex(re[$0], im[$0]) }
        let typed = input.map { Complex(T($0.real), T($0.imaginary)) }
        let forward = fft.transform(typed, .forward)
        let reference = Self.naiveDFT(input, shape: shape)
        for i in 0..<fft.count {
            #expect(abs(Double(forward[i].real) - reference[i].real) < tolerance)
            #expect(abs(Double(forward[i].imaginary) - reference[i].imaginary) < tolerance)
        }
        let backward = fft.transform(forward, .backward)
        for i in 0..<fft.count {
            #expect(abs(Double(backward[i].real) - re[i]) < tolerance)
            #expect(abs(Double(backward[i].imaginary) - im[i]) < tolerance)
        }
    }

    /// Parseval: Σ|x|² = (1/N)·Σ|X(k)|², with the half spectrum's mirrored bins counted twice.
    @Test(arguments: shapes)
    func parsevalHolds(_ shape: SIMD3<Int>) throws {
        let fft = try FFT<Double>(shape: shape)
        let input = Self.randomReal(fft.count, seed: 3)
        let spectrum = fft.forward(input)
        let hx = shape.x / 2 + 1
        var energy = 0.0
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<hx {
            let v = spectrum[x + hx * (y + shape.y * z)]
            // Bins 0 and (for even nx) nx/2 have no mirror in the half spectrum.
            let weight = (x == 0 || (shape.x % 2 == 0 && x == shape.x / 2)) ? 1.0 : 2.0
            energy += weight * v.lengthSquared
        } } }
        let direct = input.reduce(0) { $0 + $1 * $1 }
        #expect(abs(energy / Double(fft.count) - direct) < 1e-10 * direct)
    }

    @Test func plansAreCachedPerShape() throws {
        let shape = SIMD3(9, 4, 5)
        let fft = try FFT<Float>(shape: shape)
        _ = fft.forward([Float](repeating: 1, count: fft.count))
        // Counted for this shape only (no other test uses it): tests running concurrently plan other shapes.
        let before = FFTStatistics.cachedPlans(shape: shape)
        let counted = FFTStatistics.executedTransforms
        _ = fft.forward([Float](repeating: 2, count: fft.count))
        #expect(before >= 1)
        #expect(FFTStatistics.cachedPlans(shape: shape) == before)
        #expect(FFTStatistics.executedTransforms >= counted + 1)
    }

    @Test func transformsAgreeAcrossThreadCounts() throws {
        let shape = SIMD3(16, 12, 10)
        let input = Self.randomReal(shape.x * shape.y * shape.z, seed: 5).map { Float($0) }
        let one = try FFT<Float>(shape: shape, threads: 1).forward(input)
        let two = try FFT<Float>(shape: shape, threads: 2).forward(input)
        // Different thread counts may reorder FFTW's sums: agreement to rounding (1e-5 of ~40).
        for i in 0..<one.count { #expect((one[i] - two[i]).length < 1e-4) }
    }

    @Test func invalidShapeIsRejected() {
        #expect(throws: QSMError.self) { try FFT<Float>(shape: SIMD3(4, 0, 4)) }
    }

    @Test func fastSizesAreSevenSmooth() {
        for n in 1...600 {
            let m = FFTSize.fastLength(atLeast: n)
            #expect(m >= n)
            var r = m
            for p in [2, 3, 5, 7] { while r % p == 0 { r /= p } }
            #expect(r == 1, "\(m) has a prime factor above 7")
            // Nothing smaller is also smooth.
            if m > n { #expect(!FFTSize.isFast(m - 1) || m - 1 < n) }
        }
        #expect(FFTSize.fastLength(atLeast: 257) == 270)
        #expect(FFTSize.paddedShape(SIMD3(97, 100, 11), padding: SIMD3(3, 0, 0)) == SIMD3(100, 100, 12))
    }
}
