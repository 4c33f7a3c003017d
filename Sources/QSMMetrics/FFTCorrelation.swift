import QSMCore

// Large kernels (the 15³ and 17³ LoG kernels of HFEN) are cheaper through FFTs than as seven
// separable passes: FFTW's vectorised transforms of the padded grid beat ~270 multiply-adds per
// voxel. The result equals the direct correlation up to FFT rounding (~1e-15 relative). Buffers
// are allocated once per filter and reused, because fresh 100 MB arrays cost page faults.

/// Correlation of volumes of one shape with one small 3-D kernel, via r2c FFTs on a grid padded by
/// the kernel radius with the boundary rule, so no wrap-around reaches the output.
final class FFTCorrelation {
    let shape: SIMD3<Int>
    let radius: Int
    let boundary: FilterBoundary
    let padded: SIMD3<Int>
    private let fft: FFT<Double>
    private let real: UnsafeMutableBufferPointer<Double>
    private let spectrum: UnsafeMutableBufferPointer<Complex<Double>>
    private let kernelFactors: [([Complex<Double>], [Complex<Double>], [Complex<Double>])]

    /// The kernel Σₜ fₜ(dx)·gₜ(dy)·hₜ(dz) (each factor on −radius…radius) plus `constant` on the
    /// (2·radius + 1)³ cube: output(i) = Σₖ kernel(k)·v(i + k).
    ///
    /// The kernel's spectrum is built from the 1-D transforms of its factors (no 3-D kernel FFT).
    init?(shape: SIMD3<Int>, radius: Int, boundary: FilterBoundary, terms: [([Double], [Double], [Double])],
          constant: Double = 0) {
        precondition(boundary != .truncated)
        self.shape = shape
        self.radius = radius
        self.boundary = boundary
        let padded = SIMD3(FFTSize.fastLength(atLeast: shape.x + 2 * radius),
                           FFTSize.fastLength(atLeast: shape.y + 2 * radius),
                           FFTSize.fastLength(atLeast: shape.z + 2 * radius))
        self.padded = padded
        guard let fft = try? FFT<Double>(shape: padded) else { return nil }
        self.fft = fft
        real = Self.allocate(Double.self, fft.count)
        spectrum = Self.allocate(Complex<Double>.self, fft.halfCount)
        // Correlation = convolution with the reflected kernel k(−d), whose 1-D DFT at frequency f
        // is Σ_d k(d)·exp(+2πi·f·d/L).
        func transform(_ k: [Double], _ length: Int, _ frequencies: Int) -> [Complex<Double>] {
            (0..<frequencies).map { f in
                var sum = Complex<Double>.zero
                for (index, value) in k.enumerated() {
                    let angle = 2 * Double.pi * Double(f * (index - radius) % length) / Double(length)
                    sum += Complex(value * Double.cos(angle), value * Double.sin(angle))
                }
                return sum
            }
        }
        let half = fft.halfShape
        var factors = terms.map { (transform($0.0, padded.x, half.x), transform($0.1, padded.y, half.y),
                                   transform($0.2, padded.z, half.z)) }
        if constant != 0 {
            let ones = [Double](repeating: 1, count: 2 * radius + 1)
            factors.append((transform(ones.map { $0 * constant }, padded.x, half.x),
                            transform(ones, padded.y, half.y), transform(ones, padded.z, half.z)))
        }
        // Fold the inverse transform's 1/N into the x factors (saves a pass over the volume).
        let scale = 1 / Double(fft.count)
        kernelFactors = factors.map { ($0.0.map { $0 * scale }, $0.1, $0.2) }
    }

    deinit {
        real.deallocate()
        spectrum.deallocate()
    }

    /// Σ (K ⋆ (v − w))² over voxels where `selection` is true (all voxels when nil); `w` optional.
    func sumOfSquares(_ v: UnsafePointer<Double>, minus w: UnsafePointer<Double>?,
                      over selection: UnsafePointer<Bool>?) -> Double {
        let n = shape, p = padded, r = radius, boundary = self.boundary
        let source = SendablePointer(UnsafeMutablePointer(mutating: v))
        let subtrahend = w.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        // Source index per padded position, −1 for a zero (outside the grid with zero padding).
        let xMap = (0..<p.x).map { mapIndex($0 - r, n.x, boundary) ?? -1 }
        let yMap = (0..<p.y).map { mapIndex($0 - r, n.y, boundary) ?? -1 }
        let zMap = (0..<p.z).map { mapIndex($0 - r, n.z, boundary) ?? -1 }
        let target = SendablePointer(real.baseAddress!)
        parallelFor(0..<p.z) { zRange in
            for z in zRange {
                for y in 0..<p.y {
                    let row = target.base + p.x * (y + p.y * z)
                    let sz = zMap[z], sy = yMap[y]
                    guard sz >= 0, sy >= 0 else {
                        row.update(repeating: 0, count: p.x)
                        continue
                    }
                    let from = source.base + n.x * (sy + n.y * sz)
                    let minus = subtrahend.map { $0.base + n.x * (sy + n.y * sz) }
                    // Interior: a straight copy (or difference); borders through the map.
                    if let minus {
                        for x in 0..<n.x { row[r + x] = from[x] - minus[x] }
                    } else {
                        for x in 0..<n.x { row[r + x] = from[x] }
                    }
                    for x in Array(0..<r) + Array((r + n.x)..<p.x) {
                        let sx = xMap[x]
                        row[x] = sx < 0 ? 0 : from[sx] - (minus?[sx] ?? 0)
                    }
                }
            }
        }
        fft.forward(UnsafeBufferPointer(real), into: spectrum)

        // Multiply by the kernel spectrum Σₜ Xₜ(fx)·Yₜ(fy)·Zₜ(fz), from flat factor tables.
        let half = fft.halfShape, termCount = kernelFactors.count
        let fx = kernelFactors.flatMap(\.0), fy = kernelFactors.flatMap(\.1), fz = kernelFactors.flatMap(\.2)
        let ps = SendablePointer(spectrum.baseAddress!)
        fx.withUnsafeBufferPointer { fxBuffer in
            let px = SendablePointer(UnsafeMutablePointer(mutating: fxBuffer.baseAddress!))
            parallelFor(0..<half.z) { zRange in
                var yz = [Complex<Double>](repeating: .zero, count: termCount)
                for z in zRange { for y in 0..<half.y {
                    for t in 0..<termCount { yz[t] = fy[t * half.y + y] * fz[t * half.z + z] }
                    let row = ps.base + half.x * (y + half.y * z)
                    yz.withUnsafeBufferPointer { factors in
                        for x in 0..<half.x {
                            var k = Complex<Double>.zero
                            for t in 0..<termCount { k += px[t * half.x + x] * factors[t] }
                            row[x] = row[x] * k
                        }
                    }
                } }
            }
        }
        fft.inverse(spectrum, into: real, normalized: false)

        // Per-slice partial sums added in z order: independent of the thread count.
        var partials = [Double](repeating: 0, count: n.z)
        let chosen = selection.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        partials.withUnsafeMutableBufferPointer { buffer in
            let results = SendablePointer(buffer.baseAddress!)
            parallelFor(0..<n.z) { zRange in
                for z in zRange {
                    var sum = 0.0
                    for y in 0..<n.y {
                        let from = target.base + (r + p.x * (y + r + p.y * (z + r)))
                        if let chosen {
                            let inside = chosen.base + n.x * (y + n.y * z)
                            for x in 0..<n.x where inside[x] { sum += from[x] * from[x] }
                        } else {
                            for x in 0..<n.x { sum += from[x] * from[x] }
                        }
                    }
                    results[z] = sum
                }
            }
        }
        return partials.reduce(0, +)
    }

    private static func allocate<T>(_: T.Type, _ count: Int) -> UnsafeMutableBufferPointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<T>.stride, alignment: 64)
        return UnsafeMutableBufferPointer(start: raw.bindMemory(to: T.self, capacity: count), count: count)
    }
}
