import Testing
import QSMPipeline

@Suite struct MaskingTests {
    /// Magnitude: a bright sphere (radius 12, value 1 ± 0.05) with an enclosed dark core (radius 4,
    /// value 0.1, like a ventricle in T2*) in a dark background (0.05 ± 0.005), 40³. The percentile rule puts t near 0.11, 12 background SDs up.
    func phantom() throws -> (magnitude: Volume<Float>, sphere: [Bool]) {
        let grid = Grid(shape: SIMD3(repeating: 40))
        let noise = CounterGaussian(seed: 11)
        var values = [Float](repeating: 0, count: grid.count), sphere = [Bool](repeating: false, count: grid.count)
        for z in 0..<40 { for y in 0..<40 { for x in 0..<40 {
            let i = grid.index(x, y, z)
            let d = SIMD3(Double(x), Double(y), Double(z)) - 19.5
            let r2 = (d * d).sum()
            let g = noise.pair(stream: 0, index: UInt64(i)).0
            sphere[i] = r2 <= 144
            values[i] = Float(r2 <= 16 ? 0.1 + 0.02 * g : (r2 <= 144 ? 1 + 0.05 * g : 0.05 + 0.005 * g))
        } } }
        return (try Volume(grid: grid, voxels: values), sphere)
    }

    /// The sphere minus every voxel with a face neighbour outside it: one 6-connected erosion,
    /// computed here independently of the library's morphology.
    func erodedOnce(_ m: [Bool], _ n: Int) -> [Bool] {
        var out = m
        for z in 1..<n - 1 { for y in 1..<n - 1 { for x in 1..<n - 1 {
            let i = x + n * (y + n * z)
            out[i] = m[i] && m[i - 1] && m[i + 1] && m[i - n] && m[i + n] && m[i - n * n] && m[i + n * n]
        } } }
        return out
    }

    @Test(arguments: ThresholdMask.ThresholdRule.allCases) func thresholdFillErode(_ rule: ThresholdMask.ThresholdRule) throws {
        let (magnitude, sphere) = try phantom()
        var p = ThresholdMask.Parameters()
        p.rule = rule
        let mask = try ThresholdMask(p).apply(magnitude: magnitude, context: StageContext())
        // Classes are ≥ 10 noise SDs from either threshold, so any sensible threshold separates them exactly; the dark
        // core is enclosed, so hole filling restores it; one erosion removes the surface layer.
        let expected = erodedOnce(sphere, 40)
        let wrong = zip(mask.voxels, expected).filter { $0 != $1 }.count
        #expect(wrong == 0, "\(wrong) voxels differ from the eroded sphere (\(mask.insideCount) inside)")
    }

    @Test func withoutFillingTheCoreStaysOut() throws {
        let (magnitude, sphere) = try phantom()
        var p = ThresholdMask.Parameters()
        p.fillHoles = false
        p.erosions = 0
        let mask = try ThresholdMask(p).apply(magnitude: magnitude, context: StageContext())
        let c = magnitude.grid.index(20, 20, 20)
        #expect(!mask.voxels[c])
        #expect(mask.insideCount < sphere.filter { $0 }.count)
    }

    @Test func erodingEverythingIsAnError() throws {
        let (magnitude, _) = try phantom()
        var p = ThresholdMask.Parameters()
        p.erosions = 20
        #expect(throws: QSMError.invalidParameter("mask.erosions", "20 erosions leave an empty mask")) {
            try ThresholdMask(p).apply(magnitude: magnitude, context: StageContext())
        }
    }

    /// Hole filling against an independent voxel-by-voxel flood from the array faces, on masks with
    /// enclosed cavities, tunnels to the outside and scattered voxels (random, 48×40×36): every
    /// background voxel not 6-connected to a face must be filled, every other one kept.
    @Test(arguments: [1, 2, 3]) func fillHolesMatchesAFloodFromTheFaces(seed: UInt64) throws {
        let n = SIMD3(48, 40, 36), grid = Grid(shape: n)
        var generator = SeededGenerator(seed: seed)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }
        var inside = [Bool](repeating: false, count: grid.count)
        func paint(_ value: Bool, count: Int, radius: ClosedRange<Double>) {
            for _ in 0..<count {
                let c = SIMD3(uniform() * Double(n.x), uniform() * Double(n.y), uniform() * Double(n.z))
                let r = radius.lowerBound + uniform() * (radius.upperBound - radius.lowerBound)
                for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x {
                    let d = SIMD3(Double(x), Double(y), Double(z)) - c
                    if (d * d).sum() <= r * r { inside[grid.index(x, y, z)] = value }
                } } }
            }
        }
        paint(true, count: 6, radius: 6...12)
        paint(false, count: 12, radius: 1...4)       // cavities, some enclosed, some open to the outside
        for i in 0..<grid.count where uniform() < 0.08 { inside[i].toggle() }
        let magnitude = try Volume(grid: grid, voxels: inside.map { Float($0 ? 1 : 0) })
        var p = ThresholdMask.Parameters()
        p.erosions = 0
        let mask = try ThresholdMask(p).apply(magnitude: magnitude, context: StageContext())
        // Reference: background reachable from the array faces through background stays out.
        var reached = [Bool](repeating: false, count: grid.count), queue: [SIMD3<Int>] = []
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x
            where x == 0 || y == 0 || z == 0 || x == n.x - 1 || y == n.y - 1 || z == n.z - 1 {
            let i = grid.index(x, y, z)
            if !inside[i] { reached[i] = true; queue.append(SIMD3(x, y, z)) }
        } } }
        var head = 0
        while head < queue.count {
            let v = queue[head]; head += 1
            for step in [SIMD3(1, 0, 0), SIMD3(-1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, -1, 0), SIMD3(0, 0, 1), SIMD3(0, 0, -1)] {
                let w = v &+ step
                guard all(w .>= .zero) && all(w .< n) else { continue }
                let j = grid.index(w.x, w.y, w.z)
                if !inside[j] && !reached[j] { reached[j] = true; queue.append(w) }
            }
        }
        let expected = reached.map { !$0 }
        let holes = zip(expected, inside).filter { $0 && !$1 }.count
        let wrong = zip(mask.voxels, expected).filter { $0 != $1 }.count
        #expect(holes > 10, "the random mask should have enclosed holes to fill (\(holes))")
        #expect(wrong == 0, "\(wrong) voxels differ from the reference fill (\(holes) holes)")
    }
    /// Otsu's rule against an independent implementation (256 bins between min and max, maximise
    /// the between-class variance, threshold at the upper edge of the lower class's last bin), on
    /// 3·65536 + 5 values (several parallel chunks and a remainder past the 8-wide loop) with
    /// unbalanced classes: the thresholded voxels must agree exactly.
    @Test func otsuMatchesAReferenceImplementation() throws {
        let grid = Grid(shape: SIMD3(3 * 65536 + 5, 1, 1))
        let noise = CounterGaussian(seed: 5)
        let values = (0..<grid.count).map { i -> Float in
            let g = Float(noise.pair(stream: 1, index: UInt64(i)).0)
            return i % 7 == 0 ? 3 + 0.4 * g : 0.5 + 0.2 * g
        }
        let lo = values.min()!, hi = values.max()!
        let scale = Float(256) / (hi - lo)
        var histogram = [Double](repeating: 0, count: 256)
        for v in values { histogram[min(255, Int((v - lo) * scale))] += 1 }
        var best = -1.0, bestBin = 0
        for b in 0..<255 {
            let w0 = histogram[0...b].reduce(0, +), w1 = Double(values.count) - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = (0...b).reduce(0.0) { $0 + Double($1) * histogram[$1] } / w0
            let m1 = (b + 1..<256).reduce(0.0) { $0 + Double($1) * histogram[$1] } / w1
            let between = w0 * w1 * (m0 - m1) * (m0 - m1)
            if between > best { best = between; bestBin = b }
        }
        let threshold = lo + Float(bestBin + 1) / scale
        var p = ThresholdMask.Parameters()
        p.fillHoles = false
        p.erosions = 0
        let mask = try ThresholdMask(p).apply(magnitude: try Volume(grid: grid, voxels: values), context: StageContext())
        let wrong = zip(mask.voxels, values).filter { $0 != ($1 > threshold) }.count
        #expect(wrong == 0, "\(wrong) voxels differ from the reference threshold \(threshold)")
        #expect(mask.insideCount > grid.count / 8 && mask.insideCount < grid.count / 6)
    }

    /// A NaN or infinity anywhere (inside the 8-wide loop or in the remainder) is reported.
    @Test(arguments: [0, 5, 8, 13, 1000, 1003, 1006]) func nonFiniteMagnitudeIsAnError(position: Int) throws {
        let grid = Grid(shape: SIMD3(1007, 1, 1))
        for bad in [Float.nan, .infinity, -.infinity] {
            var values = (0..<grid.count).map { Float($0 % 10) }
            values[position] = bad
            #expect(throws: QSMError.invalidFile("magnitude", "non-finite value at voxel index \(position)")) {
                try ThresholdMask().apply(magnitude: try Volume(grid: grid, voxels: values), context: StageContext())
            }
        }
    }
}
