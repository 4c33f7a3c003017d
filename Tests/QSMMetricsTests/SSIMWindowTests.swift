import QSMCore
import QSMMetrics
import Testing

/// SSIM/XSIM against a direct per-voxel 3-D window sum written from the definition, on a volume
/// tall enough (40 slices) that the fused filter's rolling window of slices moves several times.
@Suite struct SSIMWindowTests {
    let grid = Grid(shape: SIMD3(13, 11, 40))

    func volumes() -> (Volume<Double>, Volume<Double>, Mask) {
        var generator = SeededGenerator(seed: 11)
        var a = Volume<Double>(zeros: grid), b = a, m = Mask(grid: grid, repeating: false)
        for i in 0..<grid.count {
            a.voxels[i] = Double.random(in: -0.1...0.1, using: &generator)
            b.voxels[i] = 0.7 * a.voxels[i] + Double.random(in: -0.05...0.05, using: &generator)
            m.voxels[i] = Double.random(in: 0...1, using: &generator) < 0.6
        }
        return (a, b, m)
    }

    /// Weight of tap offset d on an axis of length n at position i, after the boundary rule.
    func taps(_ i: Int, _ n: Int, _ weights: [Double], _ boundary: SSIM.Boundary) -> [(Int, Double)] {
        let r = weights.count / 2
        var out: [(Int, Double)] = []
        for (k, w) in weights.enumerated() {
            var j = i + k - r
            if j < 0 || j >= n {
                switch boundary {
                case .zero, .truncated: continue
                case .replicate: j = j < 0 ? 0 : n - 1
                case .reflect: j = j < 0 ? -j - 1 : 2 * n - 1 - j   // one mirror suffices here (r < n)
                }
            }
            out.append((j, w))
        }
        if boundary == .truncated {
            let inside = out.reduce(0) { $0 + $1.1 }, total = weights.reduce(0, +)
            out = out.map { ($0.0, $0.1 * total / inside) }
        }
        return out
    }

    func direct(_ ssim: SSIM, _ weights: [Double], _ a: Volume<Double>, _ b: Volume<Double>, _ m: Mask) -> Double {
        let n = grid.shape
        var sum = 0.0, count = 0
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x where m[x, y, z] {
            var ma = 0.0, mb = 0.0, aa = 0.0, bb = 0.0, ab = 0.0
            for (zz, wz) in taps(z, n.z, weights, ssim.boundary) {
                for (yy, wy) in taps(y, n.y, weights, ssim.boundary) {
                    for (xx, wx) in taps(x, n.x, weights, ssim.boundary) {
                        let w = wx * wy * wz, va = a[xx, yy, zz], vb = b[xx, yy, zz]
                        ma += w * va; mb += w * vb; aa += w * va * va; bb += w * vb * vb; ab += w * va * vb
                    }
                }
            }
            let numerator = (2 * ma * mb + ssim.c1) * (2 * (ab - ma * mb) + ssim.c2)
            let denominator = (ma * ma + mb * mb + ssim.c1) * (aa - ma * ma + bb - mb * mb + ssim.c2)
            sum += numerator / denominator
            count += 1
        } } }
        return sum / Double(count)
    }

    /// Tolerance 1e-10 relative: same formula, different summation order (separable vs 3-D).
    @Test(arguments: [SSIM.Boundary.zero, .reflect, .replicate, .truncated])
    func fusedFilterMatchesDirectWindows(_ boundary: SSIM.Boundary) throws {
        let (a, b, m) = volumes()
        let sigma = 1.5, radius = 5
        let g = (-radius...radius).map { Double.exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let weights = g.map { $0 / g.reduce(0, +) }
        let ssim = SSIM(window: .gaussian(sigma: sigma, radius: radius), boundary: boundary, c1: 1e-4, c2: 9e-4, averaging: .mask)
        let fused = try #require(ssim.mean(a, b, mask: m))
        let reference = direct(ssim, weights, a, b, m)
        #expect(abs(fused - reference) <= 1e-10 * abs(reference), "\(fused) vs \(reference)")

        let box = SSIM(window: .uniform(radius: 2), boundary: boundary, c1: 1e-4, c2: 1e-6, averaging: .mask)
        let boxReference = direct(box, [Double](repeating: 0.2, count: 5), a, b, m)
        let boxFused = try #require(box.mean(a, b, mask: m))
        #expect(abs(boxFused - boxReference) <= 1e-10 * abs(boxReference), "\(boxFused) vs \(boxReference)")
    }
}
