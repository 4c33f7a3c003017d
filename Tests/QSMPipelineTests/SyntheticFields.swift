import QSMPipeline

/// Test phantoms built here (independent of QSMPhantom): known χ inside and outside a brain mask,
/// fields by the k-space dipole kernel on a grid padded to twice the size (so exterior sources do
/// not wrap), in Double, then cropped. Everything is deterministic.
struct SyntheticHead {
    let grid: Grid
    let mask: Mask
    /// χ of the sources inside the mask, ppm.
    let localSusceptibility: Volume<Float>
    /// Field of the sources inside the mask, ppm (whole grid).
    let localField: Volume<Float>
    /// Field of the sources outside the mask plus a linear gradient, ppm (whole grid).
    let backgroundField: Volume<Float>
    var totalField: Volume<Float> {
        var t = localField
        for i in 0..<t.voxels.count { t.voxels[i] += backgroundField.voxels[i] }
        return t
    }

    /// A spherical "brain" of radius `brainRadius` voxels in an n³ grid, with four χ spheres inside,
    /// an air-like sphere (−9 ppm) and a bone-like sphere (−2 ppm) outside (times `exteriorScale`), and a 0.02 ppm/voxel gradient.
    init(size n: Int = 64, brainRadius: Double = 20, exteriorScale: Double = 1) {
        grid = Grid(shape: SIMD3(repeating: n))
        let c = Double(n - 1) / 2
        func sphere(_ center: SIMD3<Double>, _ radius: Double) -> (Int, Int, Int) -> Bool {
            { x, y, z in
                let d = SIMD3(Double(x), Double(y), Double(z)) - center
                return (d * d).sum() <= radius * radius
            }
        }
        let brain = sphere(SIMD3(repeating: c), brainRadius)
        let inside: [((Int, Int, Int) -> Bool, Double)] = [
            (sphere(SIMD3(c + 6, c, c + 2), 4), 0.10), (sphere(SIMD3(c - 7, c + 3, c - 3), 3), -0.06),
            (sphere(SIMD3(c, c - 8, c + 6), 3.5), 0.08), (sphere(SIMD3(c + 1, c + 7, c - 8), 2.5), 0.15),
        ]
        let outside: [((Int, Int, Int) -> Bool, Double)] = [
            (sphere(SIMD3(c, c + brainRadius + 6, c - 6), 4), -9.0 * exteriorScale),
            (sphere(SIMD3(c + brainRadius + 4, c - 4, c + 5), 3), -2.0 * exteriorScale),
        ]
        var m = [Bool](repeating: false, count: grid.count)
        var chiIn = [Double](repeating: 0, count: grid.count), chiOut = chiIn
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let i = grid.index(x, y, z)
            m[i] = brain(x, y, z)
            if m[i] { for (shape, value) in inside where shape(x, y, z) { chiIn[i] = value } }
            else { for (shape, value) in outside where shape(x, y, z) { chiOut[i] = value } }
        } } }
        mask = try! Volume(grid: grid, voxels: m)
        localSusceptibility = try! Volume(grid: grid, voxels: chiIn.map { Float($0) })
        localField = Self.field(of: chiIn, grid: grid)
        var background = Self.field(of: chiOut, grid: grid)
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            background.voxels[grid.index(x, y, z)] += Float(0.02 * (Double(z) - c) + 0.01 * (Double(x) - c))
        } } }
        backgroundField = background
    }

    /// D ⊛ χ (ppm) with D(0) = 0 on a 2n grid, cropped back, B0 along z.
    static func field(of chi: [Double], grid: Grid) -> Volume<Float> {
        let big = grid.shape &* 2
        let padded = try! Volume(grid: grid, voxels: chi).padded(to: big, offset: .zero)
        let fft = try! FFT<Double>(shape: big)
        var spectrum = fft.forward(padded.voxels)
        let d = DipoleKernel.halfSpectrum(shape: big, voxelSize: grid.voxelSize, b0Direction: SIMD3(0, 0, 1), as: Double.self)
        for i in 0..<spectrum.count { spectrum[i] = Complex(spectrum[i].real * d[i], spectrum[i].imaginary * d[i]) }
        let field = try! Volume(grid: padded.grid, voxels: fft.inverse(spectrum)).cropped(to: grid.shape, offset: .zero)
        return field.converted(to: Float.self)
    }
}

/// Relative RMS error of `estimate` against `truth` over `mask`, after removing each one's mean
/// over the mask (a constant is harmonic, so no background-removal method can identify it).
func demeanedRelativeError(_ estimate: Volume<Float>, _ truth: Volume<Float>, in mask: Mask) -> Double {
    let me = estimate.mean(in: mask), mt = truth.mean(in: mask)
    var num = 0.0, den = 0.0
    for i in 0..<mask.voxels.count where mask.voxels[i] {
        let t = Double(truth.voxels[i]) - mt, e = Double(estimate.voxels[i]) - me
        num += (e - t) * (e - t); den += t * t
    }
    return (num / den).squareRoot()
}

/// Voxels of a sphere of `radius` voxels about the grid centre.
func centralSphere(_ grid: Grid, radius: Double) -> Mask {
    let c = (SIMD3<Double>(grid.shape) - 1) / 2
    var m = Mask(grid: grid, repeating: false)
    for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
        let d = SIMD3(Double(x), Double(y), Double(z)) - c
        m.voxels[grid.index(x, y, z)] = (d * d).sum() <= radius * radius
    } } }
    return m
}

extension SIMD3 where Scalar == Double {
    init(_ v: SIMD3<Int>) { self.init(Double(v.x), Double(v.y), Double(v.z)) }
}
