/// Spatial-frequency grids in cycles/mm for the DFT layout FFTW uses.
public enum KSpace {
    /// numpy-style `fftfreq`: k[m] = m/(n·Δ) for m = 0…⌈n/2⌉−1, then −⌊n/2⌋…−1 (cycles/mm).
    public static func frequencies(count n: Int, spacing: Double) -> [Double] {
        (0..<n).map { m in Double(m < (n + 1) / 2 ? m : m - n) / (Double(n) * spacing) }
    }

    /// Frequencies along x for the half spectrum of a real transform: m/(n·Δ), m = 0…n/2.
    public static func halfFrequencies(count n: Int, spacing: Double) -> [Double] {
        (0...(n / 2)).map { Double($0) / (Double(n) * spacing) }
    }

    /// Calls `body(index, kx, ky, kz)` for every point of the half spectrum of `shape`, x fastest.
    @inlinable public static func forEachHalf(
        shape: SIMD3<Int>, voxelSize: SIMD3<Double>, _ body: (Int, Double, Double, Double) -> Void
    ) {
        let kx = halfFrequencies(count: shape.x, spacing: voxelSize.x)
        let ky = frequencies(count: shape.y, spacing: voxelSize.y)
        let kz = frequencies(count: shape.z, spacing: voxelSize.z)
        var i = 0
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<kx.count {
            body(i, kx[x], ky[y], kz[z]); i += 1
        } } }
    }
}
