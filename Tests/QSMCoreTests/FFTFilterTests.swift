import QSMCore
import Testing

/// The fused plane/column transforms against the plain 3-D FFT they replace.
///
/// Shapes cover odd and even x (half widths 4, 5, 33), a plane stride that is not SIMD-aligned,
/// and column counts that are not multiples of the 16-column block (the remainder path).
/// Tolerance: both paths are Float FFTs of the same data in a different order of operations; the
/// rounding error of a Float FFT is ~1e-7·log2(N)·max|x|, so 2e-5 of the largest value is loose
/// for N ≤ 10⁵ and far below any real difference (a wrong column or plane gives O(1) errors).
@Suite struct FFTFilterTests {
    static let shapes: [SIMD3<Int>] = [SIMD3(7, 5, 6), SIMD3(8, 12, 9), SIMD3(64, 3, 20), SIMD3(6, 1, 1)]

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &g) }
    }

    /// A real, non-symmetric-in-index kernel value per half-spectrum index.
    static func kernel(_ i: Int) -> Float { 0.25 + Float(i % 11) * 0.1 }

    static func reference(_ x: [Float], shape: SIMD3<Int>) throws -> [Float] {
        let fft = try FFT<Float>(shape: shape)
        var s = fft.forward(x)
        for i in s.indices { s[i] = Complex(s[i].real * kernel(i), s[i].imaginary * kernel(i)) }
        return fft.inverse(s)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test(arguments: shapes)
    func filterEqualsForwardProductInverse(shape: SIMD3<Int>) throws {
        let fft = try FFT<Float>(shape: shape)
        let x = Self.random(fft.count, seed: 7)
        let expected = try Self.reference(x, shape: shape)
        let planeSize = shape.x * shape.y
        var spectrum = [Complex<Float>](repeating: .zero, count: fft.halfCount)
        var out = [Float](repeating: .nan, count: fft.count)
        let before = FFTStatistics.executedTransforms
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
            let input = xb.baseAddress!, output = SendablePointer(ob.baseAddress!)
            nonisolated(unsafe) let source = input
            spectrum.withUnsafeMutableBufferPointer { sb in
                fft.filter(spectrum: sb, load: { z, plane in
                    for i in 0..<planeSize { plane[i] = source[z * planeSize + i] }
                }, product: { columns in
                    for z in 0..<columns.depth { for q in 0..<columns.count {
                        let k = Self.kernel(columns.index(q, z)), v = columns.values[z * columns.stride + q]
                        columns.values[z * columns.stride + q] = Complex(v.real * k, v.imaginary * k)
                    } }
                }, store: { z, plane in
                    for i in 0..<planeSize { output[z * planeSize + i] = plane[i] }
                })
            }
        } }
        #expect(FFTStatistics.executedTransforms - before >= 2)
        let scale = expected.map(abs).max()!
        #expect(Self.maxDifference(out, expected) <= 2e-5 * scale, "shape \(shape)")
    }

    @Test(arguments: shapes)
    func fusedForwardAndInverseMatchPlainTransforms(shape: SIMD3<Int>) throws {
        let fft = try FFT<Float>(shape: shape)
        let x = Self.random(fft.count, seed: 11)
        let planeSize = shape.x * shape.y
        let plain = fft.forward(x)
        var fused = [Complex<Float>](repeating: .zero, count: fft.halfCount)
        x.withUnsafeBufferPointer { xb in
            nonisolated(unsafe) let source = xb.baseAddress!
            fused.withUnsafeMutableBufferPointer { sb in
                fft.forward(into: sb) { z, plane in for i in 0..<planeSize { plane[i] = source[z * planeSize + i] } }
            }
        }
        let spectrumScale = plain.map { $0.length }.max()!
        let spectrumError = zip(plain, fused).map { ($0 - $1).length }.max()!
        #expect(spectrumError <= 2e-5 * spectrumScale, "forward, shape \(shape)")

        // Inverse with a product from a kept spectrum (which must stay unchanged).
        let kept = plain
        var scratch = [Complex<Float>](repeating: .zero, count: fft.halfCount)
        var out = [Float](repeating: .nan, count: fft.count)
        kept.withUnsafeBufferPointer { kb in scratch.withUnsafeMutableBufferPointer { sb in out.withUnsafeMutableBufferPointer { ob in
            let output = SendablePointer(ob.baseAddress!)
            fft.inverse(kb, scratch: sb, product: { columns in
                for z in 0..<columns.depth { for q in 0..<columns.count {
                    let k = Self.kernel(columns.index(q, z)), v = columns.values[z * columns.stride + q]
                    columns.values[z * columns.stride + q] = Complex(v.real * k, v.imaginary * k)
                } }
            }, store: { z, plane in for i in 0..<planeSize { output[z * planeSize + i] = plane[i] } })
        } } }
        #expect(kept == plain)
        let expected = try Self.reference(x, shape: shape)
        #expect(Self.maxDifference(out, expected) <= 2e-5 * expected.map(abs).max()!, "inverse, shape \(shape)")

        // The in-place inverse gives the same planes from a copy it may destroy.
        var destroyed = plain, inPlace = [Float](repeating: .nan, count: fft.count)
        destroyed.withUnsafeMutableBufferPointer { sb in inPlace.withUnsafeMutableBufferPointer { ob in
            let output = SendablePointer(ob.baseAddress!)
            fft.inverse(inPlace: sb, product: { columns in
                for z in 0..<columns.depth { for q in 0..<columns.count {
                    let k = Self.kernel(columns.index(q, z)), v = columns.values[z * columns.stride + q]
                    columns.values[z * columns.stride + q] = Complex(v.real * k, v.imaginary * k)
                } }
            }, store: { z, plane in for i in 0..<planeSize { output[z * planeSize + i] = plane[i] } })
        } }
        #expect(inPlace == out, "in-place inverse, shape \(shape)")
    }

    /// `inspect` sees every half-spectrum coefficient once, with the value the forward transform stores.
    @Test(arguments: shapes)
    func forwardInspectSeesEveryStoredCoefficient(shape: SIMD3<Int>) throws {
        let fft = try FFT<Float>(shape: shape)
        let x = Self.random(fft.count, seed: 13)
        let planeSize = shape.x * shape.y
        var spectrum = [Complex<Float>](repeating: .zero, count: fft.halfCount)
        var seen = [Complex<Float>](repeating: Complex(.nan, .nan), count: fft.halfCount)
        var visits = [Int32](repeating: 0, count: fft.halfCount)
        x.withUnsafeBufferPointer { xb in seen.withUnsafeMutableBufferPointer { vb in visits.withUnsafeMutableBufferPointer { cb in
            nonisolated(unsafe) let source = xb.baseAddress!
            let values = SendablePointer(vb.baseAddress!), counts = SendablePointer(cb.baseAddress!)
            spectrum.withUnsafeMutableBufferPointer { sb in
                fft.forward(into: sb, load: { z, plane in for i in 0..<planeSize { plane[i] = source[z * planeSize + i] } },
                            inspect: { columns in
                    for z in 0..<columns.depth { for q in 0..<columns.count {
                        values[columns.index(q, z)] = columns.values[z * columns.stride + q]
                        counts[columns.index(q, z)] += 1
                    } }
                })
            }
        } } }
        #expect(visits.allSatisfy { $0 == 1 }, "shape \(shape)")
        #expect(seen == spectrum, "shape \(shape)")
    }

    @Test func filterIsIndependentOfThreadCount() throws {
        let shape = SIMD3(20, 18, 17)
        let fft = try FFT<Float>(shape: shape)
        let x = Self.random(fft.count, seed: 3)
        func run(threads: Int) -> [Float] {
            Parallelism.withThreadCount(threads) {
                let planeSize = shape.x * shape.y
                var spectrum = [Complex<Float>](repeating: .zero, count: fft.halfCount)
                var out = [Float](repeating: 0, count: fft.count)
                x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
                    nonisolated(unsafe) let source = xb.baseAddress!
                    let output = SendablePointer(ob.baseAddress!)
                    spectrum.withUnsafeMutableBufferPointer { sb in
                        fft.filter(spectrum: sb, load: { z, plane in for i in 0..<planeSize { plane[i] = source[z * planeSize + i] } },
                                   product: { _ in }, store: { z, plane in for i in 0..<planeSize { output[z * planeSize + i] = plane[i] } })
                    }
                } }
                return out
            }
        }
        let one = run(threads: 1), two = run(threads: 2)
        #expect(one == two)
        // With no product the filter is the identity (a round trip).
        #expect(Self.maxDifference(one, x) <= 2e-6)
    }
}
