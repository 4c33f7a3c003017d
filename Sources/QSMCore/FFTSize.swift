/// FFT-friendly sizes: products 2^a·3^b·5^c·7^d, which FFTW transforms fastest.
public enum FFTSize {
    /// Whether `n` has no prime factor above 7.
    public static func isFast(_ n: Int) -> Bool {
        guard n > 0 else { return false }
        var m = n
        for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
        return m == 1
    }

    /// The smallest 7-smooth integer ≥ `n` (1 for n ≤ 1).
    public static func fastLength(atLeast n: Int) -> Int {
        var m = max(1, n)
        while !isFast(m) { m += 1 }
        return m
    }

    /// Each dimension of `shape` grown by `padding` voxels, then to the next fast length.
    public static func paddedShape(_ shape: SIMD3<Int>, padding: SIMD3<Int> = .zero) -> SIMD3<Int> {
        SIMD3((0..<3).map { fastLength(atLeast: shape[$0] + max(0, padding[$0])) })
    }
}

extension Volume where Element: BinaryFloatingPoint {
    /// This volume placed at `offset` inside a zero-filled (or `value`-filled) grid of `shape`.
    ///
    /// The new grid's affine is shifted so world positions of the original voxels are unchanged.
    @inlinable public func padded(to shape: SIMD3<Int>, offset: SIMD3<Int>? = nil, value: Element = 0) -> Volume<Element> {
        precondition(frames == 1)
        let o = offset ?? (shape &- grid.shape) / 2
        precondition(all(o .>= 0) && all(o &+ grid.shape .<= shape), "padding must contain the volume")
        var affine = grid.affine
        let shift = affine.world(SIMD3(-Double(o.x), -Double(o.y), -Double(o.z)))
        for r in 0..<3 { affine[r, 3] = shift[r] }
        var out = Volume(grid: Grid(shape: shape, voxelSize: grid.voxelSize, affine: affine), repeating: value)
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z)
        for z in 0..<nz {
            for y in 0..<ny {
                let src = grid.index(0, y, z)
                let dst = out.grid.index(o.x, y + o.y, z + o.z)
                for x in 0..<nx { out.voxels[dst + x] = voxels[src + x] }
            }
        }
        return out
    }

    /// The sub-volume of `shape` starting at `offset` (the inverse of `padded`).
    @inlinable public func cropped(to shape: SIMD3<Int>, offset: SIMD3<Int>? = nil) -> Volume<Element> {
        precondition(frames == 1)
        let o = offset ?? (grid.shape &- shape) / 2
        precondition(all(o .>= 0) && all(o &+ shape .<= grid.shape), "crop must lie inside the volume")
        var affine = grid.affine
        let shift = affine.world(SIMD3(Double(o.x), Double(o.y), Double(o.z)))
        for r in 0..<3 { affine[r, 3] = shift[r] }
        var out = Volume(grid: Grid(shape: shape, voxelSize: grid.voxelSize, affine: affine), repeating: 0)
        for z in 0..<shape.z {
            for y in 0..<shape.y {
                let src = grid.index(o.x, y + o.y, z + o.z)
                let dst = out.grid.index(0, y, z)
                for x in 0..<shape.x { out.voxels[dst + x] = voxels[src + x] }
            }
        }
        return out
    }
}
