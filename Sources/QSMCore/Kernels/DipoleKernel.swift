/// The unit dipole kernel in k-space, D(k) = 1/3 − (k·b̂)²/|k|², on physical k.
///
/// Salomir R, de Senneville BD, Moonen CT. Concepts Magn Reson B 2003;19B:26–34.
/// doi:10.1002/cmr.b.10083. Marques JP, Bowtell R. Concepts Magn Reson B 2005;25B:65–78.
/// doi:10.1002/cmr.b.20034. D(0) is set explicitly from `DipoleDC` (QSM.md §2.2).
public enum DipoleKernel {
    /// D on the half spectrum of `shape` (x fastest, (nx/2+1)·ny·nz values); `b0` in voxel axes.
    public static func halfSpectrum<T: FFTScalar>(
        shape: SIMD3<Int>, voxelSize: SIMD3<Double>, b0Direction b0: SIMD3<Double>,
        dc: DipoleDC = .zero, as _: T.Type = T.self
    ) -> [T] {
        switch T.fftPrecision {
        case .single: return unsafeBitCast(compute(Float.self, shape, voxelSize, b0, dc), to: [T].self)
        case .double: return unsafeBitCast(compute(Double.self, shape, voxelSize, b0, dc), to: [T].self)
        }
    }

    /// Concrete, parallel over z planes (the kernel of a padded head grid has ~10⁸ entries).
    private static func compute<R: BinaryFloatingPoint & Sendable>(
        _: R.Type, _ shape: SIMD3<Int>, _ voxelSize: SIMD3<Double>, _ b0: SIMD3<Double>, _ dc: DipoleDC
    ) -> [R] {
        let b = b0 / (b0 * b0).sum().squareRoot()
        let kx = KSpace.halfFrequencies(count: shape.x, spacing: voxelSize.x)
        let ky = KSpace.frequencies(count: shape.y, spacing: voxelSize.y)
        let kz = KSpace.frequencies(count: shape.z, spacing: voxelSize.z)
        let hx = kx.count, ny = shape.y
        var out = [R](repeating: 0, count: hx * ny * shape.z)
        out.withUnsafeMutableBufferPointer { buffer in
            let p = SendablePointer(buffer.baseAddress!)
            let dcValue = R(dc.value)
            parallelFor(0..<shape.z) { zs in
                for z in zs {
                    for y in 0..<ny {
                        let row = hx * (y + ny * z)
                        let partial = ky[y] * b.y + kz[z] * b.z, partial2 = ky[y] * ky[y] + kz[z] * kz[z]
                        for x in 0..<hx {
                            p[row + x] = value(kx[x], b.x, partial, partial2, dc: dcValue)
                        }
                    }
                }
            }
        }
        return out
    }

    /// D(k) from kx, b̂x and the y/z parts of k·b̂ and |k|² (one expression for every caller).
    @inlinable @inline(__always) static func value<R: BinaryFloatingPoint>(
        _ kx: Double, _ bx: Double, _ partial: Double, _ partial2: Double, dc: R
    ) -> R {
        let k2 = kx * kx + partial2
        let kb = kx * bx + partial
        return k2 == 0 ? dc : R(1.0 / 3 - kb * kb / k2)
    }
}

extension DipoleKernel {
    /// D(k) on blocks of spectral columns (`FFT.filter`): `value` as in `halfSpectrum`, rounded to
    /// Float, its axis terms added in another order (a value can differ in the last Double bit).
    public struct Columns: Sendable {
        @usableFromInline let kx: [Double], ky: [Double], kz: [Double], b: SIMD3<Double>, dc: Float
        @usableFromInline let halfWidth: Int

        /// The kernel of `shape` with B0 along `b0Direction` (voxel axes).
        public init(shape: SIMD3<Int>, voxelSize: SIMD3<Double>, b0Direction b0: SIMD3<Double>, dc: DipoleDC = .zero) {
            kx = KSpace.halfFrequencies(count: shape.x, spacing: voxelSize.x)
            ky = KSpace.frequencies(count: shape.y, spacing: voxelSize.y)
            kz = KSpace.frequencies(count: shape.z, spacing: voxelSize.z)
            b = b0 / (b0 * b0).sum().squareRoot()
            self.dc = Float(dc.value)
            halfWidth = kx.count
        }

        /// Multiplies each coefficient of `columns` by transfer(D(k)).
        @inlinable public func multiply(_ columns: SpectralColumns, transfer: (Float) -> Float) {
            // z outer, columns inner: contiguous, so the Double evaluation vectorises.
            withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * columns.count) { partials in
                let n = columns.count
                for q in 0..<n {
                    let j = columns.first + q, x = j % halfWidth, y = j / halfWidth
                    partials[q] = kx[x] * b.x + ky[y] * b.y
                    partials[n + q] = kx[x] * kx[x] + ky[y] * ky[y]
                }
                for z in 0..<columns.depth {
                    let row = columns.values + z * columns.stride
                    for q in 0..<n {
                        let k = transfer(DipoleKernel.value(kz[z], b.z, partials[q], partials[n + q], dc: dc))
                        row[q] = Complex(row[q].real * k, row[q].imaginary * k)
                    }
                }
            }
        }
    }
}
