import QSMCore

/// χ = M·F⁻¹[F[M·f]·D_inv(D)]: the shared body of TKD and TSVD (2 FFTs, no padding).
enum KSpaceDivision {
    static func apply(localField: Volume<Float>, mask: Mask, context: StageContext, scale: Double = 1,
                      inverse: @Sendable (Double) -> Double) throws(QSMError) -> Volume<Float> {
        try context.validate()
        try InputCheck.field(localField, mask: mask, name: "local field")
        let grid = localField.grid
        let spectral = try Spectral(shape: grid.shape)
        let inside = mask.voxels, field = localField.voxels
        var chi = VoxelLoop.generate(count: grid.count) { inside[$0] ? field[$0] : 0 }
        var spectrum = spectral.forward(chi)
        // D_inv applied as D is evaluated: no kernel arrays (two passes over the spectrum fewer).
        let normalization = spectral.normalization
        spectrum.withUnsafeMutableBufferPointer { sb in
            DipoleKernel.multiply(sb, shape: grid.shape, voxelSize: grid.voxelSize, b0Direction: context.b0Direction,
                                  dc: context.conventions.dipoleDC) { d in Float(scale * inverse(Double(d))) * normalization }
        }
        spectral.rawInverse(&spectrum, into: &chi)
        VoxelLoop.update(&chi) { i, v in inside[i] ? v : 0 }
        return try Volume(grid: grid, voxels: chi)
    }

    /// Mean of the transfer function D·D_inv over directions (u = cos β uniform on [0, 1]):
    /// the low-frequency contrast a k-space division keeps (QSM.md §7.1). Midpoint rule, 10⁵ nodes.
    static func meanGain(_ transfer: (Double) -> Double) -> Double {
        let n = 100_000
        var sum = 0.0
        for i in 0..<n {
            let u = (Double(i) + 0.5) / Double(n)
            sum += transfer((1 - 3 * u * u) / 3)
        }
        return sum / Double(n)
    }
}
