import Testing
import QSMPipeline

/// Region growing against a plain re-implementation of its documented algorithm: edge bins from
/// the weight formulas evaluated edge by edge, Prim's growth with one binary heap over (bin, 4·i +
/// axis), seeds in order of (bin sum, index), then the temporal steps. The optimised code (vector
/// weight pass, pruned bucket queue, fused passes) must give the same Floats bit for bit.
@Suite struct RegionGrowingReferenceTests {
    /// wrap(x) in Float with the documented arithmetic x − 2π·round(x/2π), ties away from zero.
    func wrap(_ x: Float) -> Float { x - 2 * Float.pi * (x / (2 * Float.pi)).rounded() }

    /// The bins of the forward edges (3 per voxel, 0 = none) of one echo.
    func referenceBins(phase p: [Float], second q: [Float]?, teRatio: Double, magnitude m: [Float]?,
                       inside: [Bool], shape n: SIMD3<Int>, linearity: Bool) -> [UInt8] {
        var bins = [UInt8](repeating: 0, count: 3 * p.count)
        let strides = [1, n.x, n.x * n.y]
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x {
            let i = x + n.x * (y + n.y * z), c = [x, y, z], limits = [n.x, n.y, n.z]
            guard inside[i] else { continue }
            for axis in 0..<3 where c[axis] + 1 < limits[axis] && inside[i + strides[axis]] {
                let s = strides[axis], j = i + s
                let d = Double(wrap(p[j] - p[i]))
                var weight = 0.1 + 0.9 * (1 - abs(d) / Double.pi)
                if let q { weight *= 0.1 + 0.9 * max(0, 1 - abs(d - Double(wrap(q[j] - q[i])) * teRatio)) }
                if linearity {
                    var f = 1.0
                    if c[axis] >= 1 && inside[i - s] { f *= max(0, 1 - abs(Double(wrap(p[i - s] - 2 * p[i] + p[j]))) / 2) }
                    if c[axis] + 2 < limits[axis] && inside[j + s] { f *= max(0, 1 - abs(Double(wrap(p[i] - 2 * p[j] + p[j + s]))) / 2) }
                    weight *= 0.1 + 0.9 * f
                }
                if let m {
                    let a = Double(m[i]), b = Double(m[j])
                    let ratio = max(a, b) > 0 ? min(a, b) / max(a, b) : 0
                    weight *= 0.1 + 0.9 * ratio * ratio
                }
                bins[3 * i + axis] = UInt8(max(1, min(255, ((1 - weight) * 255).rounded())))
            }
        } } }
        return bins
    }

    /// Prim's growth over the bins, in place on `phase`.
    func referenceGrowth(_ phase: inout [Float], bins: [UInt8], inside: [Bool], shape n: SIMD3<Int>) {
        let strides = [1, n.x, n.x * n.y], count = phase.count
        var visited = [Bool](repeating: false, count: count)
        var heap = MinHeap()
        func visit(_ v: Int) {
            visited[v] = true
            for axis in 0..<3 {
                let s = strides[axis]
                if bins[3 * v + axis] != 0 && !visited[v + s] { heap.push(UInt64(bins[3 * v + axis]) << 40 | UInt64(4 * v + axis)) }
                if v - s >= 0 && bins[3 * (v - s) + axis] != 0 && !visited[v - s] {
                    heap.push(UInt64(bins[3 * (v - s) + axis]) << 40 | UInt64(4 * (v - s) + axis))
                }
            }
        }
        func sum(_ i: Int) -> Int { (0..<3).reduce(0) { $0 + (bins[3 * i + $1] == 0 ? 256 : Int(bins[3 * i + $1])) } }
        let seeds = (0..<count).filter { inside[$0] }.sorted { (sum($0), $0) < (sum($1), $1) }
        for seed in seeds where !visited[seed] {
            visit(seed)
            while let key = heap.pop() {
                let entry = Int(key & 0xFF_FFFF_FFFF), i = entry / 4, j = i + strides[entry % 4]
                guard visited[i] != visited[j] else { continue }
                let (from, to) = visited[i] ? (i, j) : (j, i)
                phase[to] -= 2 * Float.pi * ((phase[to] - phase[from]) / (2 * Float.pi)).rounded()
                visit(to)
            }
        }
    }

    struct MinHeap {
        var keys: [UInt64] = []
        mutating func push(_ key: UInt64) {
            keys.append(key)
            var c = keys.count - 1
            while c > 0 && keys[(c - 1) / 2] > keys[c] { keys.swapAt(c, (c - 1) / 2); c = (c - 1) / 2 }
        }
        mutating func pop() -> UInt64? {
            guard let last = keys.popLast() else { return nil }
            guard !keys.isEmpty else { return last }
            let top = keys[0]
            keys[0] = last
            var p = 0
            while true {
                var c = 2 * p + 1
                guard c < keys.count else { break }
                if c + 1 < keys.count && keys[c + 1] < keys[c] { c += 1 }
                guard keys[c] < keys[p] else { break }
                keys.swapAt(c, p); p = c
            }
            return top
        }
    }

    /// A three-echo phase with noise up to ±2.8 rad (so bins spread over the range and tie, and the
    /// result depends on the growth order: many loops of neighbour differences are not consistent)
    /// on a 37×29×23 grid (x not
    /// a multiple of 8: vector chunks and scalar row ends both run), a mask with two components
    /// and holes, magnitudes with zeros; phases beyond ±5π and a negative magnitude inside the
    /// mask and NaN outside it send their chunks down the scalar path.
    @Test(arguments: [true, false]) func matchesPlainReimplementation(linearity: Bool) throws {
        let shape = SIMD3(37, 29, 23), grid = Grid(shape: shape), count = grid.count
        let echoTimes = [0.005, 0.010, 0.015]
        var random = SeededGenerator(seed: 11)
        let smooth = smoothPhase(grid, amplitude: 25)
        var inside = [Bool](repeating: false, count: count)
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            let i = grid.index(x, y, z)
            let a = (Double(x) - 16) / 14, b = (Double(y) - 14) / 12, c = (Double(z) - 11) / 10
            inside[i] = (a * a + b * b + c * c <= 1 && Double.random(in: 0..<1, using: &random) > 0.05)
                || (x >= 33 && y >= 2 && y < 9 && z >= 3 && z < 8)
        } } }
        var frames: [[Float]] = [], magnitudes: [[Float]] = []
        for te in echoTimes {
            frames.append((0..<count).map { i in
                Float(wrapped([smooth[i] * te / 0.005 + 0.4 + Double.random(in: -2.8...2.8, using: &random)])[0])
            })
            magnitudes.append((0..<count).map { _ in
                Double.random(in: 0..<1, using: &random) < 0.05 ? 0 : Float.random(in: 0.2...1, using: &random)
            })
        }
        let outside = (0..<count).first { !inside[$0] }!
        frames[1][outside] = .nan
        let firstInside = (0..<count).filter { inside[$0] }
        frames[0][firstInside[firstInside.count / 2]] += 20
        frames[0][firstInside[firstInside.count / 3]] -= 22
        magnitudes[0][firstInside[firstInside.count / 4]] = -0.5

        var parameters = RegionGrowingUnwrapping.Parameters()
        parameters.phaseLinearity = linearity
        let out = try RegionGrowingUnwrapping(parameters).apply(
            wrappedPhase: try Volume(grid: grid, frames: 3, voxels: frames.flatMap { $0 }),
            magnitude: try Volume(grid: grid, frames: 3, voxels: magnitudes.flatMap { $0 }),
            mask: try Volume(grid: grid, voxels: inside), context: StageContext(echoTimes: echoTimes))

        var template = (0..<count).map { inside[$0] ? frames[0][$0] : 0 }
        let bins = referenceBins(phase: template, second: frames[1], teRatio: echoTimes[0] / echoTimes[1],
                                 magnitude: magnitudes[0], inside: inside, shape: shape, linearity: linearity)
        #expect(Set(bins).count > 100)     // the weights spread over the bins
        referenceGrowth(&template, bins: bins, inside: inside, shape: shape)
        var expected = [template]
        for e in 1..<3 {
            expected.append((0..<count).map { i in
                guard inside[i] else { return 0 }
                let a = Double(expected[e - 1][i])
                var predicted = a * echoTimes[e] / echoTimes[e - 1]
                if e >= 2 {
                    let b = Double(expected[e - 2][i])
                    predicted = a + (a - b) * (echoTimes[e] - echoTimes[e - 1]) / (echoTimes[e - 1] - echoTimes[e - 2])
                }
                let p = Double(frames[e][i])
                return Float(p - 2 * Double.pi * ((p - predicted) / (2 * Double.pi)).rounded())
            })
        }
        let flat = expected.flatMap { $0 }
        let differing = (0..<flat.count).filter { out.voxels[$0].bitPattern != flat[$0].bitPattern }
        #expect(differing.isEmpty, "\(differing.count) voxels differ, first \(differing.prefix(5))")
    }

    /// A non-finite phase inside the mask is an error naming the echo and voxel, whichever pass reads
    /// it (weight pass of the template, temporal pass, or each echo's weight pass when individual).
    @Test(arguments: [(0, false), (2, false), (2, true)]) func nonFinitePhaseInsideTheMaskIsAnError(echo: Int, individual: Bool) throws {
        let grid = Grid(shape: SIMD3(24, 20, 18)), count = grid.count
        let mask = centralSphere(grid, radius: 8)
        var voxels = [Float](repeating: 0.5, count: 3 * count)
        voxels[echo * count + grid.index(12, 10, 9)] = echo == 0 ? .infinity : .nan
        voxels[1 * count] = .nan                        // outside the mask: allowed
        var parameters = RegionGrowingUnwrapping.Parameters()
        parameters.individual = individual
        let value = echo == 0 ? "inf" : "nan"
        #expect(throws: QSMError.invalidFile("phase echo \(echo + 1)", "non-finite value \(value) at voxel (12, 10, 9) inside the mask")) {
            try RegionGrowingUnwrapping(parameters).apply(wrappedPhase: try Volume(grid: grid, frames: 3, voxels: voxels),
                                                          magnitude: nil, mask: mask,
                                                          context: StageContext(echoTimes: [0.005, 0.010, 0.015]))
        }
    }
}
