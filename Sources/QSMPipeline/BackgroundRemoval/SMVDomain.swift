import QSMCore

/// The common set-up of the SMV-based methods (SHARP, V-SHARP, RESHARP, iSMV): checks, padding so
/// the largest ball cannot wrap around the FFT box, the masked field and the mask's spectrum (the
/// last two computed where they are asked for).
///
/// The padded volumes are not built for the fused methods (SHARP, V-SHARP): their transforms read
/// the original grid plane by plane through `Padding.loadPlane` and write through `storePlane`.
struct SMVDomain {
    let grid: Grid
    let padding: Padding
    let spectral: Spectral
    /// M (padded).
    let mask: [Bool]
    /// M and Δb_total on the original grid.
    private let inside: [Bool], values: [Float]

    init(totalField: Volume<Float>, mask: Mask, context: StageContext, largestRadius: Double) throws(QSMError) {
        try context.validate()
        try InputCheck.field(totalField, mask: mask, name: "total field")
        grid = totalField.grid
        let reach = SMVKernel.reach(radius: largestRadius, voxelSize: grid.voxelSize)
        padding = Padding(mask: mask, margin: reach &+ 1)
        spectral = try Spectral(shape: padding.shape)
        self.mask = padding.pad(mask.voxels, fill: false)
        inside = mask.voxels
        values = totalField.voxels
    }

    /// The mask eroded by a ball of `radius` mm, on the padded grid: one distance transform
    /// (`BallErosion`, the same voxel sets as thresholding s_r ⊛ M at 1 − 0.5/|B_r|).
    func erosion(radius: Double) -> [Bool] {
        let state = BallErosion.largestFittingRadius(inside, shape: grid.shape, voxelSize: grid.voxelSize, radii: [radius]).state
        return padding.pad(state.map { $0 != UInt8.max }, fill: false)
    }

    var field: [Float] {
        let m = inside, f = values
        return padding.pad(VoxelLoop.generate(count: grid.count) { m[$0] ? f[$0] : 0 }, fill: 0)
    }

    /// `body` with M and Δb_total on the original grid, for load closures of fused transforms.
    func withInput<R>(_ body: (ReadPointer<Bool>, ReadPointer<Float>) -> R) -> R {
        inside.withUnsafeBufferPointer { ib in values.withUnsafeBufferPointer { vb in
            body(ReadPointer(ib.baseAddress!), ReadPointer(vb.baseAddress!))
        } }
    }

    /// spectrum ← F[M·Δb_total] (padded), the masked field written plane by plane (1 FFT).
    func forwardField(into spectrum: inout [Complex<Float>]) {
        let fft = spectral.fft, padding = padding
        withInput { m, f in
            spectrum.withUnsafeMutableBufferPointer { sb in
                fft.forward(into: sb, inputPlanes: padding.maskPlanes) { z, plane in padding.loadPlane(z, plane) { m[$0] ? f[$0] : 0 } }
            }
        }
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
        return try Self.localField(grid: grid, field: f, valid: m, stage: stage)
    }

    /// The local field from arrays already on the original grid (`field` zero outside `valid`);
    /// throws if the erosion left nothing.
    static func localField(grid: Grid, field: [Float], valid: [Bool], stage: String) throws(QSMError) -> LocalField {
        try requireNonEmpty(valid, stage: stage)
        return LocalField(field: try Volume(grid: grid, voxels: field), mask: try Volume(grid: grid, voxels: valid))
    }

    /// Throws (naming `stage`) if the erosion left no voxel.
    static func requireNonEmpty(_ valid: [Bool], stage: String) throws(QSMError) {
        guard valid.contains(true) else {
            throw .invalidParameter(stage, "the erosion by the radius leaves no voxel of the mask; use a smaller radius")
        }
    }
}

extension Padding {
    /// Writes plane z of the padded volume (nx·ny, x fastest): `value(i)` at original voxel i, 0 in
    /// the margin. For the load closures of fused transforms (no padded copy of the input).
    @inline(__always)
    func loadPlane(_ z: Int, _ plane: UnsafeMutableBufferPointer<Float>, _ value: (Int) -> Float) {
        let o = original, s = shape, p = plane.baseAddress!
        let oz = z - offset.z
        guard oz >= 0 && oz < o.z else { p.update(repeating: 0, count: s.x * s.y); return }
        if isIdentity {
            let base = o.x * o.y * oz
            for i in 0..<(o.x * o.y) { p[i] = value(base + i) }
            return
        }
        for y in 0..<s.y {
            let row = p + y * s.x, oy = y - offset.y
            guard oy >= 0 && oy < o.y else { row.update(repeating: 0, count: s.x); continue }
            row.update(repeating: 0, count: offset.x)
            let source = o.x * (oy + o.y * oz)
            for x in 0..<o.x { row[offset.x + x] = value(source + x) }
            (row + offset.x + o.x).update(repeating: 0, count: s.x - offset.x - o.x)
        }
    }

    /// Calls `body(i, v)` for every original voxel i of padded plane z with its value v in `plane`:
    /// the crop, for the store closures of fused transforms.
    @inline(__always)
    func storePlane(_ z: Int, _ plane: UnsafeMutableBufferPointer<Float>, _ body: (Int, Float) -> Void) {
        let o = original, s = shape, p = plane.baseAddress!
        let oz = z - offset.z
        guard oz >= 0 && oz < o.z else { return }
        for y in 0..<o.y {
            let source = p + offset.x + s.x * (y + offset.y), target = o.x * (y + o.y * oz)
            for x in 0..<o.x { body(target + x, source[x]) }
        }
    }
}

/// Block order: the half spectrum laid out as the fused column pass visits it (block by block, each
/// block z-major), so spectra written and read inside product closures stream through memory. In
/// the natural layout each block reads one short row per plane, a plane (264 KB at 256×256×176)
/// apart, which the hardware prefetchers do not follow: measured at 256×256×176, such a read of
/// one spectrum cost ~35 ms CPU per sweep, nearly one FFT's 40 ms.
enum BlockOrder {
    /// Capacity of a block-ordered half spectrum (the last block is padded to full width).
    static func capacity(_ spectral: Spectral) -> Int { capacity(halfCount: spectral.halfCount, depth: spectral.shape.z) }

    /// Capacity of a block-ordered half spectrum of `halfCount` values, columns `depth` long.
    static func capacity(halfCount: Int, depth: Int) -> Int { halfCount + 64 * depth }

    /// Start of the block in a block-ordered array (its column q at k-index z is at
    /// start + z·stride + q); traps if `capacity` is too small.
    @inline(__always)
    static func base(_ columns: SpectralColumns, capacity: Int) -> Int {
        precondition((columns.first + columns.stride) * columns.depth <= capacity, "block-ordered spectrum too small")
        return columns.first * columns.depth
    }
}

extension SMVDomain {
    /// Multiplies a block of columns by transfer(Ŝ)·(1/N), Ŝ block-ordered.
    @inline(__always)
    static func multiply(_ columns: SpectralColumns, kernel: ReadPointer<Float>, capacity: Int, scale: Float,
                         _ transfer: (Float) -> Float) {
        let base = BlockOrder.base(columns, capacity: capacity)
        for z in 0..<columns.depth {
            let row = columns.values + z * columns.stride, k = kernel.base + base + z * columns.stride
            for q in 0..<columns.count {
                let t = transfer(k[q]) * scale, v = row[q]
                row[q] = Complex(v.real * t, v.imaginary * t)
            }
        }
    }
}
