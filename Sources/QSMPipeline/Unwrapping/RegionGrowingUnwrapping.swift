import QSMCore

/// Quality-guided region-growing unwrapping with ROMEO-like edge weights.
///
/// After Dymerska B, Eckstein K, Bachrata B, Siow B, Trattnig S, Shmueli K, Robinson SD. Phase
/// unwrapping with a rapid opensource minimum spanning tree algorithm (ROMEO). MRM 2021;85:2294–2308.
/// doi:10.1002/mrm.28563 (QSM.md §3.2). Not ROMEO itself: every disconnected part of the mask gets
/// its own seed, ties within a bin pop in edge-index order (ROMEO: last in, first out), and the
/// temporal step differs (below). As in ROMEO, a bucket queue over the 255 bins orders the edges.
///
/// Edge weights between face neighbours i, j (each factor in [0, 1], mapped to 0.1 + 0.9·f and
/// multiplied, then quantised to 255 bins, lower = better): phase coherence 1 − |wrap(φi−φj)|/π;
/// phase-gradient coherence max(0, 1 − |wrap(φi−φj) − wrap(φ2i−φ2j)·TE/TE2|) with the next echo;
/// phase linearity p(h,i,j)·p(i,j,k), p(a,b,c) = max(0, 1 − |wrap(φa−2φb+φc)|/2); magnitude coherence
/// (min(Mi,Mj)/max(Mi,Mj))². The seed is the voxel with the best sum of its three forward edges;
/// each popped edge unwraps its unvisited end: φj ← φj − 2π·round((φj − φi)/2π). Noise-free and
/// with all neighbour differences below π, the result is exactly φ + 2πk with one k per region.
///
/// Multi-echo: the template echo is unwrapped spatially; its neighbours temporally as ROMEO does,
/// φn ← φn − 2π·round((φn − φref·TEn/TEref)/2π); echoes further away by linear extrapolation from
/// the two nearer unwrapped echoes, which, unlike the ratio, is insensitive to φ0.
public struct RegionGrowingUnwrapping: PhaseUnwrapping {
    /// The unwrapper's parameters.
    public struct Parameters: MethodParameters {
        /// Echo unwrapped spatially (1-based), ≥ 1. Default: ROMEO.jl `template = 1`.
        public var templateEcho = 1
        /// Unwrap every echo spatially instead of temporally. Default: ROMEO.jl `individual = false`.
        public var individual = false
        /// Use the phase-coherence weight. Default: ROMEO.jl `:romeo` weights.
        public var phaseCoherence = true
        /// Use the phase-gradient-coherence weight (needs ≥ 2 echoes). Default: ROMEO.jl `:romeo`.
        public var phaseGradientCoherence = true
        /// Use the phase-linearity weight. Default: ROMEO.jl `:romeo`.
        public var phaseLinearity = true
        /// Use the magnitude-coherence weight (needs magnitude). Default: ROMEO.jl `:romeo`.
        public var magnitudeCoherence = true
        /// The ROMEO.jl defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.integer("templateEcho", \.templateEcho, in: 1...1000, "Echo unwrapped spatially, 1-based. Default: ROMEO.jl template."),
             .flag("individual", \.individual, "Unwrap each echo spatially. Default: ROMEO.jl individual."),
             .flag("phaseCoherence", \.phaseCoherence, "Phase-coherence weight. Default: ROMEO.jl :romeo."),
             .flag("phaseGradientCoherence", \.phaseGradientCoherence, "Phase-gradient-coherence weight. Default: ROMEO.jl :romeo."),
             .flag("phaseLinearity", \.phaseLinearity, "Phase-linearity weight. Default: ROMEO.jl :romeo."),
             .flag("magnitudeCoherence", \.magnitudeCoherence, "Magnitude-coherence weight. Default: ROMEO.jl :romeo.")]
        }
    }

    public static let name = "region-growing"
    public static let kind = StageKind.unwrapping
    public static let summary = "Quality-guided region growing with ROMEO-like weights (after Dymerska et al. 2021)"
    public var parameters: Parameters
    /// Region growing with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Unwrapped phase (rad), one frame per echo, zero outside `mask`.
    public func apply(wrappedPhase: Volume<Float>, magnitude: Volume<Float>?, mask: Mask,
                      context: StageContext) throws(QSMError) -> Volume<Float> {
        try validateParameters()
        try wrappedPhase.grid.requireMatches(mask.grid, "phase", "mask")
        let insideCount = mask.insideCount
        guard insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
        let echoes = wrappedPhase.frames
        let template = parameters.templateEcho - 1
        guard template < echoes else {
            throw .invalidParameter("unwrap.templateEcho", "echo \(template + 1) does not exist (\(echoes) echoes)")
        }
        if let magnitude {
            try wrappedPhase.grid.requireMatches(magnitude.grid, "phase", "magnitude")
            guard magnitude.frames == echoes else {
                throw .mismatch("magnitude", "has \(magnitude.frames) echoes; the phase has \(echoes)")
            }
        }
        let temporal = echoes > 1 && !parameters.individual
        if temporal { try context.validateEchoTimes(frames: echoes) }
        let n = mask.grid.count
        // The queue holds edges as 32-bit 4·voxel + axis.
        guard n < 1 << 30 else {
            throw .invalidFile("phase", "\(n) voxels per echo exceed region growing's limit of 2³⁰; crop the volume")
        }
        if !wrappedPhase.withVoxels({ VoxelLoop.allFinite($0) }) {
            for e in 0..<echoes { try wrappedPhase.frame(e).requireFinite(in: mask, "phase echo \(e + 1)") }
        }
        // One output buffer, written once in parallel (no zero-fill pass first): echoes unwrapped
        // spatially are copied in, zero outside the mask, then unwrapped in place; the others are
        // zero until the temporal step.
        let order = temporal ? [template] : Array(0..<echoes)
        let copied = (0..<echoes).map { order.contains($0) }
        var output = [Float](unsafeUninitializedCapacity: n * echoes) { buffer, initialized in
            let op = SendablePointer(buffer.baseAddress!)
            wrappedPhase.withVoxels { input in mask.withVoxels { inside in
                let ip = ReadPointer(input.baseAddress!), mp = ReadPointer(inside.baseAddress!)
                parallelFor(0..<n) { r in
                    for e in 0..<echoes {
                        let offset = e * n
                        if copied[e] {
                            for i in r { op[offset + i] = mp[i] ? ip[offset + i] : 0 }
                        } else {
                            (op.base + offset + r.lowerBound).initialize(repeating: 0, count: r.count)
                        }
                    }
                }
            } }
            initialized = n * echoes
        }
        let te = context.echoTimes
        let emptyMagnitude: [Float] = []
        let magnitudeVoxels = magnitude?.voxels ?? emptyMagnitude
        wrappedPhase.withVoxels { input in output.withUnsafeMutableBufferPointer { out in
            magnitudeVoxels.withUnsafeBufferPointer { magnitudeBuffer in mask.withVoxels { inside in
                let ip = ReadPointer(input.baseAddress!), op = SendablePointer(out.baseAddress!)
                let mp = ReadPointer(inside.baseAddress!)
                var unwrapped = [Bool](repeating: false, count: echoes)
                for e in order {
                    let offset = e * n
                    let second = echoes > 1 && te.count == echoes ? (e + 1 < echoes ? e + 1 : e - 1) : nil
                    // Like the frame-by-frame original: an echo unwrapped earlier serves as its unwrapped self.
                    let secondPhase = second.map { s in
                        ReadPointer(unwrapped[s] ? UnsafePointer(out.baseAddress! + s * n) : input.baseAddress! + s * n)
                    }
                    let magnitudePointer = magnitude == nil ? nil : ReadPointer(magnitudeBuffer.baseAddress! + offset)
                    grow(phase: out.baseAddress! + offset, second: secondPhase,
                         teRatio: second.map { te[e] / te[$0] } ?? 1, magnitude: magnitudePointer,
                         inside: inside, insideCount: insideCount, shape: mask.grid.shape)
                    unwrapped[e] = true
                }
                guard temporal else { return }
                func unwrapTemporally(_ e: Int, from near: Int, _ further: Int?) {
                    let teE = te[e], teNear = te[near], teFurther = further.map { te[$0] } ?? 0
                    let far = further ?? near
                    parallelFor(0..<n) { r in
                        for i in r where mp[i] {
                            let a = Double(op[near * n + i])
                            var predicted = a * teE / teNear
                            if further != nil {
                                let b = Double(op[far * n + i])
                                predicted = a + (a - b) * (teE - teNear) / (teNear - teFurther)
                            }
                            let p = Double(ip[e * n + i])
                            op[e * n + i] = Float(p - 2 * Double.pi * roundedHalfAway((p - predicted) / (2 * Double.pi)))
                        }
                    }
                }
                for e in (template + 1)..<max(template + 1, echoes) { unwrapTemporally(e, from: e - 1, e - 2 >= template ? e - 2 : nil) }
                for e in stride(from: template - 1, through: 0, by: -1) { unwrapTemporally(e, from: e + 1, e + 2 <= template ? e + 2 : nil) }
            } }
        } }
        return try Volume(grid: wrappedPhase.grid, frames: echoes, voxels: output)
    }

    /// Region growing over the mask, in place on `phase` (wrapped values inside the mask on entry).
    ///
    /// `second` is the phase of the echo for the gradient-coherence weight, `magnitude` this echo's
    /// magnitude; `insideCount` is the number of mask voxels.
    func grow(phase: UnsafeMutablePointer<Float>, second: ReadPointer<Float>?, teRatio: Double,
              magnitude: ReadPointer<Float>?, inside: UnsafeBufferPointer<Bool>, insideCount: Int, shape n: SIMD3<Int>) {
        let count = n.x * n.y * n.z
        let strides = SIMD3(1, n.x, n.x * n.y)
        // Edge e = 3·i + axis joins i and i + stride[axis]; bin 0 = no edge, 1 (best) … 255 (worst).
        // Every entry is written by the weight pass below (in parallel, so no serial zero fill).
        var bins = [UInt8](unsafeUninitializedCapacity: 3 * count) { _, initialized in initialized = 3 * count }
        let useGradient = parameters.phaseGradientCoherence && second != nil
        let useMagnitude = parameters.magnitudeCoherence && magnitude != nil
        let useCoherence = parameters.phaseCoherence, useLinearity = parameters.phaseLinearity
        let mp = ReadPointer(inside.baseAddress!), pp = ReadPointer(UnsafePointer(phase))
        // The seed is the voxel with the lowest (sum of its three forward bins, index), a missing
        // edge counting as the worst bin; each z slab reports its best key (sum << 40 | index).
        let slabs = max(1, min(n.z, 64))
        var slabBest = [UInt64](repeating: .max, count: slabs)
        let planeStride = n.x * n.y
        // Bin of the edge i → j = i + s (both inside); `before`/`after`: i − s / j + s are in the grid.
        @inline(__always) @Sendable func edgeBin(_ i: Int, _ s: Int, before: Bool, after: Bool) -> Int {
            let j = i + s
            var weight = 1.0
            let d = Double(wrapPhase(pp[j] - pp[i]))
            if useCoherence { weight *= 0.1 + 0.9 * (1 - abs(d) / Double.pi) }
            if useGradient, let second {
                let d2 = Double(wrapPhase(second[j] - second[i]))
                weight *= 0.1 + 0.9 * max(0, 1 - abs(d - d2 * teRatio))
            }
            if useLinearity {
                var f = 1.0
                if before && mp[i - s] {
                    f *= max(0, 1 - abs(Double(wrapPhase(pp[i - s] - 2 * pp[i] + pp[j]))) / 2)
                }
                if after && mp[j + s] {
                    f *= max(0, 1 - abs(Double(wrapPhase(pp[i] - 2 * pp[j] + pp[j + s]))) / 2)
                }
                weight *= 0.1 + 0.9 * f
            }
            if useMagnitude, let magnitude {
                let a = Double(magnitude[i]), b = Double(magnitude[j])
                let ratio = max(a, b) > 0 ? min(a, b) / max(a, b) : 0
                weight *= 0.1 + 0.9 * ratio * ratio
            }
            return Int(max(1, min(255, roundedHalfAway((1 - weight) * 255))))
        }
        bins.withUnsafeMutableBufferPointer { bb in slabBest.withUnsafeMutableBufferPointer { sb in
            let bp = SendablePointer(bb.baseAddress!), best = SendablePointer(sb.baseAddress!)
            parallelFor(0..<slabs, chunks: slabs) { slabRange in
                for slab in slabRange {
                    var slabMinimum = UInt64.max
                    for z in n.z * slab / slabs..<n.z * (slab + 1) / slabs {
                        for y in 0..<n.y { for x in 0..<n.x {
                            let i = x + n.x * (y + n.y * z)
                            guard mp[i] else { bp[3 * i] = 0; bp[3 * i + 1] = 0; bp[3 * i + 2] = 0; continue }
                            // One call per axis with its stride and bounds as plain values (no
                            // dynamic SIMD indexing in the hot loop); the same arithmetic per edge.
                            let bx = x + 1 < n.x && mp[i + 1]
                                ? edgeBin(i, 1, before: x >= 1, after: x + 2 < n.x) : 0
                            let by = y + 1 < n.y && mp[i + n.x]
                                ? edgeBin(i, n.x, before: y >= 1, after: y + 2 < n.y) : 0
                            let bz = z + 1 < n.z && mp[i + planeStride]
                                ? edgeBin(i, planeStride, before: z >= 1, after: z + 2 < n.z) : 0
                            bp[3 * i] = UInt8(bx); bp[3 * i + 1] = UInt8(by); bp[3 * i + 2] = UInt8(bz)
                            let sum = UInt64(bx == 0 ? 256 : bx) + UInt64(by == 0 ? 256 : by) + UInt64(bz == 0 ? 256 : bz)
                            slabMinimum = min(slabMinimum, sum << 40 | UInt64(i))
                        } }
                    }
                    best[slab] = slabMinimum
                }
            }
        } }
        var best = [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
            let bp = SendablePointer(buffer.baseAddress!)
            parallelFor(0..<count) { r in (bp.base + r.lowerBound).initialize(repeating: .max, count: r.count) }
            initialized = count
        }
        bins.withUnsafeBufferPointer { bb in best.withUnsafeMutableBufferPointer { kb in
            var front = GrowthFront(bins: bb.baseAddress!, best: kb.baseAddress!, phase: phase,
                                    strides: strides, queue: BucketQueue(valueLimit: 4 * count))
            front.growRegion(from: Int(slabBest.min()! & 0xFF_FFFF_FFFF))
            guard front.visitedCount < insideCount else { return }
            // Disconnected parts: one seed each, the unvisited voxels in order of (bin sum, index),
            // by a counting sort over the sums 3…768. Regions do not interact, so seeding the first
            // region before the sort gives the same result as seeding every region from the sorted list.
            let bp = bb.baseAddress!, kp = kb.baseAddress!
            var sums: [UInt16] = []
            var remaining: [Int] = []
            for i in 0..<count where mp[i] && kp[i] != 0 {
                remaining.append(i)
                var sum = 0
                for axis in 0..<3 { let b = Int(bp[3 * i + axis]); sum += b == 0 ? 256 : b }
                sums.append(UInt16(sum))
            }
            var start = [Int](repeating: 0, count: 770)
            for s in sums { start[Int(s) + 1] += 1 }
            for k in 1..<start.count { start[k] += start[k - 1] }
            var sorted = [Int](repeating: 0, count: remaining.count)
            for (k, i) in remaining.enumerated() { sorted[start[Int(sums[k])]] = i; start[Int(sums[k])] += 1 }
            for seed in sorted where kp[seed] != 0 { front.growRegion(from: seed) }
        } }
    }
}

/// The state of one growth: the edge bins, the per-voxel best keys (0 = visited) and the queue (a
/// struct with mutating methods, so the hot loop's accesses need no dynamic exclusivity checks).
private struct GrowthFront {
    let bins: UnsafePointer<UInt8>
    /// Per voxel, 0 once visited, else the best key (bin << 3 | slot ≥ 8) of the edges queued
    /// towards it: an edge that does not beat it can never be the one that reaches the voxel, so it
    /// is not queued (Prim's algorithm with distinct keys: the popped edges, hence the result, are
    /// unchanged). One array for both, so a neighbour costs one random access, not two.
    let best: UnsafeMutablePointer<UInt16>
    let phase: UnsafeMutablePointer<Float>
    let strides: SIMD3<Int>
    var queue: BucketQueue
    var visitedCount = 0

    /// Queues the edges from `i` to its unvisited neighbours. Entries are 4·i + axis: ordered as
    /// the edge index 3·i + axis, decoded by a shift. Seen from the neighbour j, its six edges in
    /// entry order are −z, −y, −x, +x, +y, +z (slots 0…5), so bin << 3 | slot orders them as the queue does.
    @inline(__always) mutating func pushEdges(of i: Int) {
        for axis in 0..<3 {
            let forward = bins[3 * i + axis]
            let k = i + strides[axis]
            if forward != 0 {
                let key = UInt16(forward) << 3 | UInt16(2 - axis)
                if key < best[k] { best[k] = key; queue.push(4 * i + axis, bin: forward) }
            }
            let j = i - strides[axis]
            if j >= 0 {
                let backward = bins[3 * j + axis]
                if backward != 0 {
                    let key = UInt16(backward) << 3 | UInt16(3 + axis)
                    if key < best[j] { best[j] = key; queue.push(4 * j + axis, bin: backward) }
                }
            }
        }
    }

    /// Grows the region of `seed` until no edge leads out of it.
    mutating func growRegion(from seed: Int) {
        best[seed] = 0
        visitedCount += 1
        pushEdges(of: seed)
        while let entry = queue.pop() {
            let i = entry >> 2, j = i + strides[entry & 3]
            let iVisited = best[i] == 0
            guard iVisited != (best[j] == 0) else { continue }
            let (from, to) = iVisited ? (i, j) : (j, i)
            let difference = phase[to] - phase[from]
            phase[to] -= 2 * Float.pi * roundedHalfAway(difference / (2 * Float.pi))
            best[to] = 0
            visitedCount += 1
            pushEdges(of: to)
        }
    }
}
