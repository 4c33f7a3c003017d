import QSMCore

/// Zero padding that keeps a mask at least `margin` voxels from every face of a periodic FFT box.
///
/// Circular convolution wraps a kernel around the box: a ball reaching past one face reads the
/// opposite face. Axes where the mask already keeps its distance are left alone, so a brain in a
/// normal field of view costs no extra FFT size; other axes grow by 2·margin to an even fast length.
/// Even, because an odd first axis makes the real-to-complex FFT 15–30 × slower here (125×140×126:
/// 0.2–0.4 s per transform against 0.015 s at 126×140×126), which made V-SHARP with a 36 mm ball on
/// the 2 mm head take 5–8 s instead of 0.3 s.
struct Padding: Sendable {
    let original: SIMD3<Int>
    let shape: SIMD3<Int>
    let offset: SIMD3<Int>
    /// The planes of the padded box that hold mask voxels (nil: not known, every plane): the
    /// support of masked inputs and outputs of fused transforms.
    let maskPlanes: PlaneSupport?

    init(mask: Mask, margin: SIMD3<Int>) {
        let s = mask.grid.shape
        let (lo, hi) = Morphology.boundingBox(mask.voxels, shape: s)
        var shape = s, offset = SIMD3<Int>.zero
        for a in 0..<3 where lo[a] < margin[a] || s[a] - 1 - hi[a] < margin[a] {
            shape[a] = Self.evenFastLength(atLeast: s[a] + 2 * margin[a])
            offset[a] = (shape[a] - s[a]) / 2
        }
        original = s
        self.shape = shape
        self.offset = offset
        maskPlanes = PlaneSupport(depth: shape.z, ranges: hi.z < lo.z ? [] : [(lo.z + offset.z)..<(hi.z + offset.z + 1)])
    }

    /// The smallest even 7-smooth length ≥ n.
    static func evenFastLength(atLeast n: Int) -> Int {
        var m = FFTSize.fastLength(atLeast: n)
        while m % 2 != 0 { m = FFTSize.fastLength(atLeast: m + 1) }
        return m
    }

    /// The identity padding for a grid of `shape` (used where the caller pads itself).
    init(identity shape: SIMD3<Int>) {
        original = shape
        self.shape = shape
        offset = .zero
        maskPlanes = nil
    }

    var isIdentity: Bool { shape == original }

    var count: Int { shape.x * shape.y * shape.z }

    func pad<T>(_ values: [T], fill: T) -> [T] {
        if isIdentity { return values }
        var out = [T](repeating: fill, count: count)
        for z in 0..<original.z {
            for y in 0..<original.y {
                let src = original.x * (y + original.y * z)
                let dst = offset.x + shape.x * (y + offset.y + shape.y * (z + offset.z))
                for x in 0..<original.x { out[dst + x] = values[src + x] }
            }
        }
        return out
    }

    func crop<T>(_ values: [T], fill: T) -> [T] {
        if isIdentity { return values }
        var out = [T](repeating: fill, count: original.x * original.y * original.z)
        for z in 0..<original.z {
            for y in 0..<original.y {
                let dst = original.x * (y + original.y * z)
                let src = offset.x + shape.x * (y + offset.y + shape.y * (z + offset.z))
                for x in 0..<original.x { out[dst + x] = values[src + x] }
            }
        }
        return out
    }
}
