import QSMCore

/// The padded FFT grid an FFT-based inversion works on: dipole kernel, Laplacian symbol, FFT.
///
/// Padding follows QSM.jl's default: grow each axis by `padding` voxels, then to the next
/// 2^a·3^b·5^c·7^d length. Differences are periodic on the padded grid, so the Fourier symbol of
/// ∇ᵀ∇ is exactly Σ_i (2 − 2cos(2π m_i/N_i))/Δ_i² (QSM.md §7).
struct InversionGrid {
    let original: Grid
    let shape: SIMD3<Int>
    let voxelSize: SIMD3<Double>
    let fft: FFT<Float>
    /// D(k) on the half spectrum.
    let dipole: [Float]
    /// Eigenvalues of −∇² (forward differences, periodic) on the half spectrum.
    let laplacian: [Float]

    init(_ grid: Grid, padding: Int, context: StageContext) throws(QSMError) {
        try context.validate()
        original = grid
        shape = FFTSize.paddedShape(grid.shape, padding: SIMD3(repeating: padding))
        voxelSize = grid.voxelSize
        fft = try FFT<Float>(shape: shape)
        dipole = DipoleKernel.halfSpectrum(shape: shape, voxelSize: voxelSize, b0Direction: context.b0Direction,
                                           dc: context.conventions.dipoleDC)
        laplacian = LaplacianEigenvalues.halfSpectrum(shape: shape, voxelSize: voxelSize).map { -$0 }
    }

    var count: Int { shape.x * shape.y * shape.z }
    var halfCount: Int { fft.halfCount }

    /// `volume` zero-padded onto this grid (centred).
    func pad(_ values: [Float]) -> [Float] {
        let v = Volume(unchecked: original, values)
        return v.padded(to: shape).voxels
    }

    /// The original-grid part of a padded array, as a volume with the original geometry.
    func crop(_ values: [Float]) -> Volume<Float> {
        let g = Grid(shape: shape, voxelSize: voxelSize)
        let cropped = Volume(unchecked: g, values).cropped(to: original.shape)
        return Volume(unchecked: original, cropped.voxels)
    }

    /// Forward periodic differences (∂x, ∂y, ∂z) of `values` on this grid, in 1/mm.
    func gradient(_ values: [Float], into gx: inout [Float], _ gy: inout [Float], _ gz: inout [Float]) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        values.withUnsafeBufferPointer { v in
            let src = v.baseAddress!
            let ox = SendablePointer(gx.withUnsafeMutableBufferPointer { $0.baseAddress! })
            let oy = SendablePointer(gy.withUnsafeMutableBufferPointer { $0.baseAddress! })
            let oz = SendablePointer(gz.withUnsafeMutableBufferPointer { $0.baseAddress! })
            let input = SendablePointer(UnsafeMutablePointer(mutating: src))
            parallelFor(0..<nz) { zs in
                for z in zs {
                    let zn = z + 1 == nz ? 0 : z + 1
                    for y in 0..<ny {
                        let yn = y + 1 == ny ? 0 : y + 1
                        let row = nx * (y + ny * z)
                        for x in 0..<nx {
                            let i = row + x
                            let c = input[i]
                            ox[i] = (input[row + (x + 1 == nx ? 0 : x + 1)] - c) * hx
                            oy[i] = (input[x + nx * (yn + ny * z)] - c) * hy
                            oz[i] = (input[x + nx * (y + ny * zn)] - c) * hz
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `gradient`: ∇ᵀ(gx, gy, gz) = −(backward divergence).
    func gradientAdjoint(_ gx: [Float], _ gy: [Float], _ gz: [Float], into out: inout [Float]) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        let o = SendablePointer(out.withUnsafeMutableBufferPointer { $0.baseAddress! })
        gx.withUnsafeBufferPointer { ax in gy.withUnsafeBufferPointer { ay in gz.withUnsafeBufferPointer { az in
            let px = SendablePointer(UnsafeMutablePointer(mutating: ax.baseAddress!))
            let py = SendablePointer(UnsafeMutablePointer(mutating: ay.baseAddress!))
            let pz = SendablePointer(UnsafeMutablePointer(mutating: az.baseAddress!))
            parallelFor(0..<nz) { zs in
                for z in zs {
                    let zp = z == 0 ? nz - 1 : z - 1
                    for y in 0..<ny {
                        let yp = y == 0 ? ny - 1 : y - 1
                        let row = nx * (y + ny * z)
                        for x in 0..<nx {
                            let i = row + x
                            let xm = row + (x == 0 ? nx - 1 : x - 1)
                            o[i] = (px[xm] - px[i]) * hx + (py[x + nx * (yp + ny * z)] - py[i]) * hy
                                + (pz[x + nx * (y + ny * zp)] - pz[i]) * hz
                        }
                    }
                }
            }
        } } }
    }
}

extension Volume {
    init(unchecked grid: Grid, _ voxels: [Element]) {
        // Sizes are guaranteed by the caller (internal use on padded grids).
        self = try! Volume(grid: grid, voxels: voxels)
    }
}

/// Euclidean norm accumulated in Double.
func norm(_ values: [Float]) -> Double {
    var s = 0.0
    for v in values { s += Double(v) * Double(v) }
    return s.squareRoot()
}

/// An iterative inversion: reports its iterations and, when asked, its objective per iteration.
public protocol IterativeInversion: DipoleInversion {
    /// χ (ppm, zero outside the mask) and what the iterations did.
    func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog)
}

extension IterativeInversion {
    /// χ in ppm on the field's grid.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float> {
        try invert(localField: localField, mask: mask, context: context, recordObjective: false).chi
    }
}
