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
    /// The padded-size real buffer F[M] was computed from (contents undefined), for `takeWorkspace`.
    private var workspace: [Float]

    init(totalField: Volume<Float>, mask: Mask, context: StageContext, largestRadius: Double) throws(QSMError) {
        try context.validate()
        try InputCheck.field(totalField, mask: mask, name: "total field")
        grid = totalField.grid
        let reach = SMVKernel.reach(radius: largestRadius, voxelSize: grid.voxelSize)
        padding = Padding(mask: mask, margin: reach &+ 1)
        spectral = try Spectral(shape: padding.shape)
        self.mask = padding.pad(mask.voxels, fill: false)
        let inside = mask.voxels, values = totalField.voxels
        field = padding.pad(VoxelLoop.generate(count: grid.count) { inside[$0] ? values[$0] : 0 }, fill: 0)
        let padded = self.mask
        workspace = VoxelLoop.generate(count: padded.count) { padded[$0] ? 1 : 0 }
        maskSpectrum = spectral.forward(workspace)
    }

    /// A zero-filled padded-size real buffer, reusing the one F[M] was computed from (a fresh
    /// 46 MB array at 256×256×176 costs page faults comparable to a third of an FFT).
    mutating func takeWorkspace() -> [Float] {
        var buffer: [Float] = []
        swap(&buffer, &workspace)
        buffer.withUnsafeMutableBufferPointer { b in
            let p = SendablePointer(b.baseAddress!)
            parallelFor(0..<b.count) { r in (p.base + r.lowerBound).initialize(repeating: 0, count: r.count) }
        }
        return buffer
    }

    func kernel(radius: Double, parameter: String) throws(QSMError) -> SMVKernel {
        try SMVKernel(radius: radius, voxelSize: grid.voxelSize, spectral: spectral, parameter: parameter)
    }

    /// The cropped local field and valid mask; throws if the erosion left nothing.
    /// `field` is consumed so that, unpadded, it is masked in place rather than copied.
    func result(field: consuming [Float], valid: [Bool], stage: String) throws(QSMError) -> LocalField {
        let m = padding.crop(valid, fill: false)
        var f = padding.isIdentity ? field : padding.crop(field, fill: 0)
        VoxelLoop.update(&f) { i, v in m[i] ? v : 0 }
        let out = try Volume(grid: grid, voxels: m)
        guard out.insideCount > 0 else {
            throw .invalidParameter(stage, "the erosion by the radius leaves no voxel of the mask; use a smaller radius")
        }
        return LocalField(field: try Volume(grid: grid, voxels: f), mask: out)
    }
}
