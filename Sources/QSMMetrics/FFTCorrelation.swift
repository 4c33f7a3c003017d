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
    private let kernelSpectrum: UnsafeMutableBufferPointer<Complex<Double>>

    /// `kernel(dx, dy, dz)` for offsets in −radius…radius: output(i) = Σ kernel(k)·v(i + k).
    init?(shape: SIMD3<Int>, radius: Int, boundary: FilterBoundary, kernel: (Int, Int, Int) -> Double) {
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
        kernelSpectrum = Self.allocate(Complex<Double>.self, fft.halfCount)
        // Convolution with the reflected kernel: place kernel(k) at index −k (mod padded shape).
        real.update(repeating: 0)
        for dz in -radius...radius { for dy in -radius...radius { for dx in -radius...radius {
            let x = (-dx + padded.x) % padded.x, y = (-dy + padded.y) % padded.y, z = (-dz + padded.z) % padded.z
            real[x + padded.x * (y + padded.y * z)] = kernel(dx, dy, dz)
        } } }
        fft.forward(UnsafeBufferPointer(real), into: kernelSpectrum)
    }

    deinit {
        real.deallocate()
        spectrum.deallocate()
        kernelSpectrum.deallocate()
    }

    /// Σ (K ⋆ (v − w))² over voxels where `selection` is true (all voxels when nil); `w` optional.
    func sumOfSquares(_ v: UnsafePointer<Double>, minus w: UnsafePointer<Double>?,
                      over selection: UnsafePointer<Bool>?) -> Double {
        let n = shape, p = padded, r = radius, boundary = self.boundary
        let source = SendablePointer(UnsafeMutablePointer(mutating: v))
        let subtrahend = w.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let xMap = (0..<p.x).map { paddedSource($0 - r, n.x, boundary) }
        let yMap = (0..<p.y).map { paddedSource($0 - r, n.y, boundary) }
        let zMap = (0..<p.z).map { paddedSource($0 - r, n.z, boundary) }
        let target = SendablePointer(real.baseAddress!)
        parallelFor(0..<p.z) { zRange in
            for z in zRange {
                for y in 0..<p.y {
                    let row = target.base + p.x * (y + p.y * z)
                    guard let sz = zMap[z], let sy = yMap[y] else {
                        row.update(repeating: 0, count: p.x)
                        continue
                    }
                    let offset = n.x * (sy + n.y * sz)
                    for x in 0..<p.x {
                        if let sx = xMap[x] {
                            row[x] = source[offset + sx] - (subtrahend?[offset + sx] ?? 0)
                        } else {
                            row[x] = 0
                        }
                    }
                }
            }
        }
        fft.forward(UnsafeBufferPointer(real), into: spectrum)
        let ps = SendablePointer(spectrum.baseAddress!), pk = SendablePointer(kernelSpectrum.baseAddress!)
        parallelFor(0..<fft.halfCount) { range in for i in range { ps[i] = ps[i] * pk[i] } }
        fft.inverse(spectrum, into: real)

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
                        let index = n.x * (y + n.y * z)
                        for x in 0..<n.x where chosen?[index + x] ?? true { sum += from[x] * from[x] }
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

/// The in-grid source of padded position `i` (grid index i), or nil for a zero.
private func paddedSource(_ i: Int, _ n: Int, _ boundary: FilterBoundary) -> Int? {
    if i >= 0 && i < n { return i }
    switch boundary {
    case .zero, .truncated: return nil
    case .replicate: return i < 0 ? 0 : n - 1
    case .reflect:
        let period = 2 * n
        var m = i % period
        if m < 0 { m += period }
        return m < n ? m : period - 1 - m
    }
}
