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

    /// Plane supports: a transform told which planes hold the input, and which output planes are
    /// wanted, returns on those planes exactly (bit for bit: skipped planes are exact zeros, not
    /// approximations) what the full transform returns, never loads or stores the other planes,
    /// and ignores whatever the spectrum buffer held there before.
    @Test(arguments: [SIMD3(8, 12, 9), SIMD3(7, 5, 6), SIMD3(64, 3, 20)])
    func planeSupportsGiveTheFullTransformsResult(shape: SIMD3<Int>) throws {
        let fft = try FFT<Float>(shape: shape)
        let planeSize = shape.x * shape.y, depth = shape.z
        // Input on planes 0, 2, depth − 1 (a kernel wrapped around z = 0); output wanted on 1..<depth/2 + 1 and depth − 2.
        let input = PlaneSupport(depth: depth, ranges: [0..<1, 2..<3, (depth - 1)..<depth])
        let output = PlaneSupport(depth: depth, ranges: [1..<(depth / 2 + 1), (depth - 2)..<(depth - 1)])
        var x = Self.random(fft.count, seed: 17)
        for z in 0..<depth where !input.contains(z) { for i in 0..<planeSize { x[z * planeSize + i] = 0 } }
        let product: @Sendable (SpectralColumns) -> Void = { columns in
            for z in 0..<columns.depth { for q in 0..<columns.count {
                let k = Self.kernel(columns.index(q, z)), v = columns.values[z * columns.stride + q]
                columns.values[z * columns.stride + q] = Complex(v.real * k, v.imaginary * k)
            } }
        }
        func filter(_ inputPlanes: PlaneSupport?, _ outputPlanes: PlaneSupport?) -> (out: [Float], loads: [Int32], stores: [Int32]) {
            var spectrum = [Complex<Float>](repeating: Complex(.nan, .nan), count: fft.halfCount)
            var out = [Float](repeating: .nan, count: fft.count)
            var loads = [Int32](repeating: 0, count: depth), stores = loads
            x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
                loads.withUnsafeMutableBufferPointer { lb in stores.withUnsafeMutableBufferPointer { tb in
                    nonisolated(unsafe) let source = xb.baseAddress!
                    let o = SendablePointer(ob.baseAddress!), l = SendablePointer(lb.baseAddress!), t = SendablePointer(tb.baseAddress!)
                    spectrum.withUnsafeMutableBufferPointer { sb in
                        fft.filter(spectrum: sb, inputPlanes: inputPlanes, outputPlanes: outputPlanes, load: { z, plane in
                            l[z] += 1
                            for i in 0..<planeSize { plane[i] = source[z * planeSize + i] }
                        }, product: product, store: { z, plane in
                            t[z] += 1
                            for i in 0..<planeSize { o[z * planeSize + i] = plane[i] }
                        })
                    }
                } }
            } }
            return (out, loads, stores)
        }
        let full = filter(nil, nil), pruned = filter(input, output)
        #expect(pruned.loads == (0..<depth).map { input.contains($0) ? 1 : 0 })
        #expect(pruned.stores == (0..<depth).map { output.contains($0) ? 1 : 0 })
        for z in 0..<depth where output.contains(z) {
            #expect(Array(pruned.out[z * planeSize..<(z + 1) * planeSize]) == Array(full.out[z * planeSize..<(z + 1) * planeSize]), "plane \(z), shape \(shape)")
        }
        #expect(pruned.out.indices.allSatisfy { output.contains($0 / planeSize) || pruned.out[$0].isNaN }, "a skipped plane was written")
        // The full filter really depends on the input planes: dropping one changes the output.
        let missing = filter(PlaneSupport(depth: depth, ranges: [0..<1, 2..<3]), output)
        #expect(missing.out != pruned.out)

        // forward(into:) with an input support, into a buffer of NaNs; inverse of a kept spectrum with an output support.
        let plain = fft.forward(x)
        var spectrum = [Complex<Float>](repeating: Complex(.nan, .nan), count: fft.halfCount)
        x.withUnsafeBufferPointer { xb in
            nonisolated(unsafe) let source = xb.baseAddress!
            spectrum.withUnsafeMutableBufferPointer { sb in
                fft.forward(into: sb, inputPlanes: input) { z, plane in for i in 0..<planeSize { plane[i] = source[z * planeSize + i] } }
            }
        }
        var unpruned = [Complex<Float>](repeating: .zero, count: fft.halfCount)
        x.withUnsafeBufferPointer { xb in
            nonisolated(unsafe) let source = xb.baseAddress!
            unpruned.withUnsafeMutableBufferPointer { sb in
                fft.forward(into: sb) { z, plane in for i in 0..<planeSize { plane[i] = source[z * planeSize + i] } }
            }
        }
        #expect(spectrum == unpruned, "forward, shape \(shape)")
        #expect(zip(plain, spectrum).map { ($0 - $1).length }.max()! <= 2e-5 * plain.map { $0.length }.max()!)
        var scratch = [Complex<Float>](repeating: Complex(.nan, .nan), count: fft.halfCount)
        var inverse = [Float](repeating: .nan, count: fft.count)
        spectrum.withUnsafeBufferPointer { kb in scratch.withUnsafeMutableBufferPointer { sb in inverse.withUnsafeMutableBufferPointer { ob in
            let o = SendablePointer(ob.baseAddress!)
            fft.inverse(kb, scratch: sb, outputPlanes: output, product: product,
                        store: { z, plane in for i in 0..<planeSize { o[z * planeSize + i] = plane[i] } })
        } } }
        for z in 0..<depth where output.contains(z) {
            #expect(Array(inverse[z * planeSize..<(z + 1) * planeSize]) == Array(full.out[z * planeSize..<(z + 1) * planeSize]), "inverse plane \(z)")
        }
    }

    /// The planes holding a true voxel, found eight flags at a time (remainders and all-false planes included).
    @Test func planeSupportOfAMask() {
        let planeSize = 13, depth = 6
        var mask = [Bool](repeating: false, count: planeSize * depth)
        mask[1 * planeSize + 12] = true   // last voxel of plane 1 (the byte-wise remainder)
        mask[3 * planeSize + 0] = true    // first voxel of plane 3
        mask[4 * planeSize + 8] = true    // second 8-byte word of plane 4
        let support = mask.withUnsafeBufferPointer { PlaneSupport(occupiedBy: $0, planeSize: planeSize) }
        #expect((0..<depth).filter { support.contains($0) } == [1, 3, 4])
        #expect(support.embedded(at: 2, depth: 10).planes == [3, 5, 6])
    }
}
