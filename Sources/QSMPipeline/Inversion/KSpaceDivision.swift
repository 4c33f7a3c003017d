import QSMCore

/// χ = M·F⁻¹[F[M·f]·D_inv(D)]: the shared body of TKD and TSVD (2 FFTs, no padding).
enum KSpaceDivision {
    static func apply(localField: Volume<Float>, mask: Mask, context: StageContext, scale: Double = 1,
                      inverse: @escaping @Sendable (Double) -> Double) throws(QSMError) -> Volume<Float> {
        try context.validate()
        try InputCheck.field(localField, mask: mask, name: "local field")
        let grid = localField.grid
        let fft = try FFT<Float>(shape: grid.shape)
        let kernel = DipoleKernel.Columns(shape: grid.shape, voxelSize: grid.voxelSize, b0Direction: context.b0Direction,
                                          dc: context.conventions.dipoleDC)
        // One fused sweep: masked input into the plane transforms, D_inv applied to each block of
        // k-space columns as D is evaluated, the mask applied as output planes are written.
        let planeSize = grid.shape.x * grid.shape.y
        var spectrum = [Complex<Float>](unsafeUninitializedCapacity: fft.halfCount) { _, n in n = fft.halfCount }
        // Planes without mask voxels: zero input, output not needed (the transforms skip them).
        let planes = mask.voxels.withUnsafeBufferPointer { PlaneSupport(occupiedBy: $0, planeSize: planeSize) }
        let chi = [Float](unsafeUninitializedCapacity: grid.count) { out, n in
            let o = SendablePointer(out.baseAddress!)
            localField.voxels.withUnsafeBufferPointer { fb in mask.voxels.withUnsafeBufferPointer { mb in
                let f = ReadPointer(fb.baseAddress!), m = ReadPointer(mb.baseAddress!)
                spectrum.withUnsafeMutableBufferPointer { sb in
                    fft.filter(spectrum: sb, inputPlanes: planes, outputPlanes: planes, load: { z, plane in
                        let offset = z * planeSize
                        for i in 0..<planeSize { plane[i] = m[offset + i] ? f[offset + i] : 0 }
                    }, product: { columns in
                        kernel.multiply(columns) { d in Float(scale * inverse(Double(d))) }
                    }, store: { z, plane in
                        let offset = z * planeSize
                        for i in 0..<planeSize { o[offset + i] = m[offset + i] ? plane[i] : 0 }
                    })
                }
                planes.zeroPlanesOutside(o.base, planeSize: planeSize, depth: grid.shape.z)
            } }
            n = grid.count
        }
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
