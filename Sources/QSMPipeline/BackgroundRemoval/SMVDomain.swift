import QSMCore

/// The common set-up of the SMV-based methods (SHARP, V-SHARP, RESHARP, iSMV): checks, padding so
/// the largest ball cannot wrap around the FFT box, the masked field and the mask's spectrum.
struct SMVDomain {
    let grid: Grid
    let padding: Padding
    let spectral: Spectral
    /// M (padded).
    let mask: [Bool]
    /// M·Δb_total (padded).
    let field: [Float]
    /// F[M].
    let maskSpectrum: [Complex<Float>]

    init(totalField: Volume<Float>, mask: Mask, context: StageContext, largestRadius: Double) throws(QSMError) {
        try context.validate()
        try InputCheck.field(totalField, mask: mask, name: "total field")
        grid = totalField.grid
        let reach = SMVKernel.reach(radius: largestRadius, voxelSize: grid.voxelSize)
        padding = Padding(mask: mask, margin: reach &+ 1)
        spectral = try Spectral(shape: padding.shape)
        self.mask = padding.pad(mask.voxels, fill: false)
        field = padding.pad(totalField.masked(by: mask).voxels, fill: 0)
        maskSpectrum = spectral.forward(self.mask.map { $0 ? 1 : 0 })
    }

    func kernel(radius: Double, parameter: String) throws(QSMError) -> SMVKernel {
        try SMVKernel(radius: radius, voxelSize: grid.voxelSize, spectral: spectral, parameter: parameter)
    }

    /// The cropped local field and valid mask; throws if the erosion left nothing.
    func result(field: [Float], valid: [Bool], stage: String) throws(QSMError) -> LocalField {
        let m = padding.crop(valid, fill: false)
        var f = padding.crop(field, fill: 0)
        for i in 0..<f.count where !m[i] { f[i] = 0 }
        let out = try Volume(grid: grid, voxels: m)
        guard out.insideCount > 0 else {
            throw .invalidParameter(stage, "the erosion by the radius leaves no voxel of the mask; use a smaller radius")
        }
        return LocalField(field: try Volume(grid: grid, voxels: f), mask: out)
    }
}

/// Truncated inverse of the SMV high-pass: T(c) = 1/c if |c| ≥ threshold, else 0 (SHARP's TSVD).
func truncatedInverse(_ highPass: [Float], threshold: Double) -> [Float] {
    let t = Float(threshold)
    return highPass.map { abs($0) >= t ? 1 / $0 : 0 }
}
