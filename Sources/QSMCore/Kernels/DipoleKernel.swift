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
        let b = b0 / (b0 * b0).sum().squareRoot()
        var out = [T](repeating: 0, count: (shape.x / 2 + 1) * shape.y * shape.z)
        KSpace.forEachHalf(shape: shape, voxelSize: voxelSize) { i, kx, ky, kz in
            let k2 = kx * kx + ky * ky + kz * kz
            if k2 == 0 { out[i] = T(dc.value); return }
            let kb = kx * b.x + ky * b.y + kz * b.z
            out[i] = T(1.0 / 3 - kb * kb / k2)
        }
        return out
    }
}
