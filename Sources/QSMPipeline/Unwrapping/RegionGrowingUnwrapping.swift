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
        // One output buffer, each voxel written once: echoes unwrapped spatially are copied in (zero
        // outside the mask) by their weight pass and unwrapped in place, the others by the temporal pass.
        let order = temporal ? [template] : Array(0..<echoes)
        var output = [Float](unsafeUninitializedCapacity: n * echoes) { _, initialized in initialized = n * echoes }
        let te = context.echoTimes
        let emptyMagnitude: [Float] = []
        let magnitudeVoxels = magnitude?.voxels ?? emptyMagnitude
        // Every echo's phase inside the mask must be finite: checked by the passes that read it
        // (weight pass or temporal pass) instead of a pass of its own; on failure the per-echo
        // check below names the first offending voxel. Non-finite values cannot crash the passes.
        let allFinite = wrappedPhase.withVoxels { input in output.withUnsafeMutableBufferPointer { out in
            magnitudeVoxels.withUnsafeBufferPointer { magnitudeBuffer in mask.withVoxels { inside in
                let ip = ReadPointer(input.baseAddress!), op = SendablePointer(out.baseAddress!)
                let mp = ReadPointer(inside.baseAddress!)
                var unwrapped = [Bool](repeating: false, count: echoes)
                var finite = true
                for e in order {
                    let offset = e * n
                    let second = echoes > 1 && te.count == echoes ? (e + 1 < echoes ? e + 1 : e - 1) : nil
                    // Like the frame-by-frame original: an echo unwrapped earlier serves as its unwrapped self.
                    let secondPhase = second.map { s in
                        ReadPointer(unwrapped[s] ? UnsafePointer(out.baseAddress! + s * n) : input.baseAddress! + s * n)
                    }
                    let magnitudePointer = magnitude == nil ? nil : ReadPointer(magnitudeBuffer.baseAddress! + offset)
                    finite = grow(phase: out.baseAddress! + offset, wrapped: ReadPointer(input.baseAddress! + offset),
                         second: secondPhase, teRatio: second.map { te[e] / te[$0] } ?? 1, magnitude: magnitudePointer,
                         inside: inside, insideCount: insideCount, shape: mask.grid.shape) && finite
                    unwrapped[e] = true
                }
                guard temporal else { return finite }
                // Outwards from the template, each echo from its one or two nearer unwrapped echoes;
                // one pass over blocks of voxels (each written once, zero outside the mask).
                let steps = Array((template + 1)..<max(template + 1, echoes)).map { e in
                    TemporalStep(echo: e, near: e - 1, further: e - 2 >= template ? e - 2 : nil, echoTimes: te)
                } + stride(from: template - 1, through: 0, by: -1).map { e in
                    TemporalStep(echo: e, near: e + 1, further: e + 2 <= template ? e + 2 : nil, echoTimes: te)
                }
                let chunks = max(1, min(256, n / 4096))
                var chunkFinite = [Bool](repeating: true, count: chunks)
                steps.withUnsafeBufferPointer { stepBuffer in chunkFinite.withUnsafeMutableBufferPointer { fb in
                    let sp = ReadPointer(stepBuffer.baseAddress!), stepCount = stepBuffer.count
                    let flags = SendablePointer(fb.baseAddress!)
                    parallelFor(0..<chunks, chunks: chunks) { chunkRange in for chunk in chunkRange {
                        // Blocks of voxels, step by step within a block: the voxels of a step are
                        // independent (its two divisions overlap across voxels), the block stays in cache.
                        let r = n * chunk / chunks..<n * (chunk + 1) / chunks
                        var finite = true
                        var start = r.lowerBound
                        while start < r.upperBound {
                            let end = min(start + 2048, r.upperBound)
                            for k in 0..<stepCount {
                                let step = sp[k]
                                var i = start
                                // Four inside voxels at a time (the scalar arithmetic lane by lane).
                                while i + 4 <= end {
                                    let flags = UnsafeRawPointer(mp.base + i).loadUnaligned(as: UInt32.self)
                                    if flags == 0 {
                                        UnsafeMutableRawPointer(op.base + step.echo * n + i).storeBytes(of: .zero, as: SIMD4<Float>.self)
                                    } else if flags != 0x0101_0101 || !step.four(i, n, ip, op) {
                                        for k in i..<i + 4 { finite = step.one(k, n, mp[k], ip, op) && finite }
                                    }
                                    i += 4
                                }
                                while i < end { finite = step.one(i, n, mp[i], ip, op) && finite; i += 1 }
                            }
                            start = end
                        }
                        flags[chunk] = finite
                    } }
                } }
                return finite && !chunkFinite.contains(false)
            } }
        } }
        if !allFinite {
            for e in 0..<echoes { try wrappedPhase.frame(e).requireFinite(in: mask, "phase echo \(e + 1)") }
        }
        return try Volume(grid: wrappedPhase.grid, frames: echoes, voxels: output)
    }

    /// Region growing over the mask into `phase`: `wrapped` inside the mask, 0 outside, unwrapped.
    ///
    /// `second` is the phase of the echo for the gradient-coherence weight, `magnitude` this echo's
    /// magnitude; `insideCount` is the number of mask voxels. Returns whether `wrapped` is finite
    /// inside the mask.
    func grow(phase: UnsafeMutablePointer<Float>, wrapped: ReadPointer<Float>, second: ReadPointer<Float>?, teRatio: Double,
              magnitude: ReadPointer<Float>?, inside: UnsafeBufferPointer<Bool>, insideCount: Int, shape n: SIMD3<Int>) -> Bool {
        let count = n.x * n.y * n.z
        let strides = SIMD3(1, n.x, n.x * n.y)
        // Edge e = 3·i + axis joins i and i + stride[axis]; bin 0 = no edge, 1 (best) … 255 (worst).
        // The weight pass writes every bin and sets every best key to .max (in parallel, so no
        // serial fill). A layout of 8 bytes per voxel (best key and bins together) was measured
        // no faster for the growth at 256×256×176.
        var bins = [UInt8](unsafeUninitializedCapacity: 3 * count) { _, initialized in initialized = 3 * count }
        var best = [UInt16](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        let binning = EdgeBinning(phase: wrapped, copy: SendablePointer(phase), second: second, teRatio: teRatio,
                                  magnitude: magnitude, inside: ReadPointer(inside.baseAddress!), shape: n,
                                  useCoherence: parameters.phaseCoherence,
                                  useGradient: parameters.phaseGradientCoherence && second != nil,
                                  useLinearity: parameters.phaseLinearity,
                                  useMagnitude: parameters.magnitudeCoherence && magnitude != nil)
        let mp = ReadPointer(inside.baseAddress!)
        var allFinite = true
        bins.withUnsafeMutableBufferPointer { bb in best.withUnsafeMutableBufferPointer { kb in
            let (seedKey, finite) = binning.binAll(into: bb.baseAddress!, best: kb.baseAddress!)
            allFinite = finite
            var front = GrowthFront(bins: bb.baseAddress!, best: kb.baseAddress!, phase: phase,
                                    strides: strides, queue: BucketQueue(valueLimit: 4 * count))
            front.growRegion(from: Int(seedKey & 0xFF_FFFF_FFFF))
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
        return allFinite
    }
}

/// One temporal unwrapping step: `echo` from `near` (ratio of echo times) or, with `further`, by
/// linear extrapolation from `near` and `further`.
private struct TemporalStep {
    let echo: Int, near: Int, far: Int, extrapolate: Bool
    let teEcho: Double, teNear: Double, teFurther: Double
    init(echo: Int, near: Int, further: Int?, echoTimes te: [Double]) {
        self.echo = echo; self.near = near; far = further ?? near; extrapolate = further != nil
        teEcho = te[echo]; teNear = te[near]; teFurther = further.map { te[$0] } ?? 0
    }

    /// Voxel i of `echo` into `out` (0 outside the mask); returns whether its phase is finite
    /// (or outside the mask).
    @inline(__always) func one(_ i: Int, _ n: Int, _ inside: Bool, _ input: ReadPointer<Float>, _ out: SendablePointer<Float>) -> Bool {
        guard inside else { out[echo * n + i] = 0; return true }
        let a = Double(out[near * n + i])
        var predicted = a * teEcho / teNear
        if extrapolate {
            let b = Double(out[far * n + i])
            predicted = a + (a - b) * (teEcho - teNear) / (teNear - teFurther)
        }
        let p = Double(input[echo * n + i])
        out[echo * n + i] = Float(p - 2 * Double.pi * roundedHalfAway((p - predicted) / (2 * Double.pi)))
        return p.isFinite
    }

    /// Voxels i…i+3 (all inside) with `one`'s arithmetic in SIMD4<Double> lanes; false (nothing
    /// written) unless every lane's (p − predicted)/2π is finite and below 2⁵¹ in magnitude. There
    /// round-half-away is RNE by adding and subtracting 1.5·2⁵² (exact), plus one in magnitude
    /// where the remainder is ±0.5 with the argument's sign, with the argument's sign (also on a
    /// zero result, as `roundedHalfAway`); comparisons as integer arithmetic on the bit patterns,
    /// since Swift's SIMD comparisons compile to lane-by-lane loops.
    @inline(__always) func four(_ i: Int, _ n: Int, _ input: ReadPointer<Float>, _ out: SendablePointer<Float>) -> Bool {
        @inline(__always) func lanes(_ p: UnsafePointer<Float>) -> SIMD4<Double> {
            SIMD4(Double(p[0]), Double(p[1]), Double(p[2]), Double(p[3]))
        }
        @inline(__always) func bits(_ v: SIMD4<Double>) -> SIMD4<UInt64> { unsafeBitCast(v, to: SIMD4<UInt64>.self) }
        @inline(__always) func double(_ v: SIMD4<UInt64>) -> SIMD4<Double> { unsafeBitCast(v, to: SIMD4<Double>.self) }
        let a = lanes(out.base + near * n + i)
        var predicted = a * teEcho / teNear
        if extrapolate {
            let b = lanes(out.base + far * n + i)
            predicted = a + (a - b) * (teEcho - teNear) / (teNear - teFurther)
        }
        let p = lanes(input.base + echo * n + i)
        let x = (p - predicted) / (2 * Double.pi)
        let sign = SIMD4<UInt64>(repeating: 1 << 63), magnitude = bits(x) & ~sign
        // Valid: |x| < 2⁵¹ (NaN and infinity excluded).
        let valid = (magnitude &- SIMD4(repeating: (0x1p51 as Double).bitPattern)) &>> 63
        guard valid[0] & valid[1] & valid[2] & valid[3] == 1 else { return false }
        let magic = SIMD4<Double>(repeating: 0x1.8p52)
        let nearest = (x + magic) - magic
        let remainder = x - nearest
        // Zero exactly where the remainder is 0.5 in magnitude with the sign of x.
        let tie = (bits(remainder) ^ (bits(x) & sign)) ^ SIMD4(repeating: (0.5 as Double).bitPattern)
        let isTie = ~(tie | (0 &- tie)) &>> 63
        let one = SIMD4<UInt64>(repeating: (1.0 as Double).bitPattern) & (0 &- isTie)
        let roundedMagnitude = double(bits(nearest) & ~sign) + double(one)
        let rounded = double(bits(roundedMagnitude) | (bits(x) & sign))
        let result = p - 2 * Double.pi * rounded
        let o = out.base + echo * n + i
        o[0] = Float(result[0]); o[1] = Float(result[1]); o[2] = Float(result[2]); o[3] = Float(result[3])
        return true
    }
}

/// The state of one growth: the edge bins, the per-voxel best keys (0 = visited) and the queue (a
/// struct with mutating methods, so the hot loop's accesses need no dynamic exclusivity checks).
private struct GrowthFront: ~Copyable {
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

/// The edge-weight pass of region growing: the bin of every forward edge and the seed key.
///
/// Rows are processed eight voxels at a time: the Float phase wraps as `SIMD8<Float>` with the
/// scalar `wrapPhase` arithmetic, the factors, the weight and its rounding in `SIMD8<Double>` with
/// the scalar operation order (mask selections as bit masks), so every bin equals the scalar
/// `bin` bit for bit (RegionGrowingReferenceTests compares the output with a plain
/// re-implementation). Chunks whose wrap arguments leave the range the vector rounding covers
/// (|x/2π| ≥ 2.5: unwrapped or non-finite input), with a negative or non-finite magnitude, and
/// the row ends use the scalar path.
struct EdgeBinning: Sendable {
    /// The wrapped phase (read as given, also outside the mask).
    let phase: ReadPointer<Float>
    /// Receives the wrapped phase inside the mask, 0 outside (one row at a time, as it is binned).
    let copy: SendablePointer<Float>
    let second: ReadPointer<Float>?
    let teRatio: Double
    let magnitude: ReadPointer<Float>?
    let inside: ReadPointer<Bool>
    let shape: SIMD3<Int>
    let useCoherence: Bool, useGradient: Bool, useLinearity: Bool, useMagnitude: Bool

    /// Bin of the edge i → j = i + s (both inside); `before`/`after`: i − s / j + s are in the grid.
    @inline(__always) func bin(_ i: Int, _ s: Int, before: Bool, after: Bool) -> Int {
        let pp = phase, mp = inside
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
        return Self.quantised(weight)
    }

    /// The bin of a weight: round((1 − weight)·255) clamped to 1…255.
    @inline(__always) static func quantised(_ weight: Double) -> Int {
        Int(max(1, min(255, roundedHalfAway((1 - weight) * 255))))
    }

    /// The seed-key sum of three bins, a missing edge (0) counting as 256.
    @inline(__always) static func keySum(_ bx: UInt8, _ by: UInt8, _ bz: UInt8) -> UInt64 {
        UInt64(bx == 0 ? 256 : Int(bx)) + UInt64(by == 0 ? 256 : Int(by)) + UInt64(bz == 0 ? 256 : Int(bz))
    }

    /// The three forward bins of voxel i.
    @inline(__always) static func setBins(_ bp: UnsafeMutablePointer<UInt8>, _ i: Int, _ bx: UInt8, _ by: UInt8, _ bz: UInt8) {
        bp[3 * i] = bx; bp[3 * i + 1] = by; bp[3 * i + 2] = bz
    }

    /// Writes the three forward bins of voxel i = (x, y, z); returns its key (sum << 40 | i), .max outside.
    @inline(__always) func scalarVoxel(_ x: Int, _ y: Int, _ z: Int, _ i: Int, _ bp: UnsafeMutablePointer<UInt8>) -> UInt64 {
        let n = shape, mp = inside, planeStride = n.x * n.y
        guard mp[i] else { Self.setBins(bp, i, 0, 0, 0); return .max }
        // One call per axis with its stride and bounds as plain values (no dynamic SIMD indexing).
        let bx = x + 1 < n.x && mp[i + 1] ? bin(i, 1, before: x >= 1, after: x + 2 < n.x) : 0
        let by = y + 1 < n.y && mp[i + n.x] ? bin(i, n.x, before: y >= 1, after: y + 2 < n.y) : 0
        let bz = z + 1 < n.z && mp[i + planeStride] ? bin(i, planeStride, before: z >= 1, after: z + 2 < n.z) : 0
        Self.setBins(bp, i, UInt8(bx), UInt8(by), UInt8(bz))
        return Self.keySum(UInt8(bx), UInt8(by), UInt8(bz)) << 40 | UInt64(i)
    }

    /// Bins of every edge into `bins` (3 per voxel, 0 = no edge) and .max into every `best` key;
    /// returns the lowest seed key (sum of the three bins << 40 | index) and whether the phase is
    /// finite inside the mask.
    func binAll(into bins: UnsafeMutablePointer<UInt8>, best keys: UnsafeMutablePointer<UInt16>) -> (UInt64, Bool) {
        let n = shape
        let slabs = max(1, min(n.z, 64))
        var slabBest = [UInt64](repeating: .max, count: slabs)
        var slabFinite = [Bool](repeating: true, count: slabs)
        let bp = SendablePointer(bins), kp = SendablePointer(keys)
        slabBest.withUnsafeMutableBufferPointer { sb in slabFinite.withUnsafeMutableBufferPointer { fb in
            let best = SendablePointer(sb.baseAddress!), flags = SendablePointer(fb.baseAddress!)
            parallelFor(0..<slabs, chunks: slabs) { slabRange in
                for slab in slabRange {
                    var slabMinimum = UInt64.max, finite = true
                    for z in n.z * slab / slabs..<n.z * (slab + 1) / slabs {
                        let plane = n.x * n.y * z
                        (kp.base + plane).initialize(repeating: .max, count: n.x * n.y)
                        for y in 0..<n.y { slabMinimum = min(slabMinimum, row(y, z, bp.base, &finite)) }
                    }
                    best[slab] = slabMinimum
                    flags[slab] = finite
                }
            }
        } }
        return (slabBest.min()!, !slabFinite.contains(false))
    }

    /// Bins of row (y, z), copied phase included; returns its lowest key, clears `finite` when the
    /// phase is not finite inside the mask.
    @inline(__always) func row(_ y: Int, _ z: Int, _ bp: UnsafeMutablePointer<UInt8>, _ finite: inout Bool) -> UInt64 {
        let n = shape, rowStart = n.x * (y + n.y * z)
        var rowFinite = true
        for i in rowStart..<rowStart + n.x {
            let value = phase[i], isInside = inside[i]
            copy[i] = isInside ? value : 0
            rowFinite = rowFinite && (!isInside || value.isFinite)
        }
        finite = finite && rowFinite
        var minimum = UInt64.max
        // Vector chunks start at x ≥ 8 (the x-linearity reads i − 1) and end by x + 9 < nx (it reads
        // i + 9), so every lane has its x neighbours in the row; the ends go through the scalar path.
        var x = 0
        while x < min(8, n.x) { minimum = min(minimum, scalarVoxel(x, y, z, rowStart + x, bp)); x += 1 }
        while x + 10 <= n.x {
            let i = rowStart + x
            let insideBits = UnsafeRawPointer(inside.base + i).loadUnaligned(as: UInt64.self)
            if insideBits == 0 {
                let raw = UnsafeMutableRawPointer(bp + 3 * i)
                raw.storeBytes(of: 0, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: 0, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)
            } else if vectorChunk(y, z, i, bp) {
                for lane in 0..<8 where inside[i + lane] {
                    let b = bp + 3 * (i + lane)
                    minimum = min(minimum, Self.keySum(b[0], b[1], b[2]) << 40 | UInt64(i + lane))
                }
            } else {
                for lane in 0..<8 { minimum = min(minimum, scalarVoxel(x + lane, y, z, i + lane, bp)) }
            }
            x += 8
        }
        while x < n.x { minimum = min(minimum, scalarVoxel(x, y, z, rowStart + x, bp)); x += 1 }
        return minimum
    }

    /// Bins of the eight voxels from i (x in 8…nx − 10); false (nothing trusted) when a wrap
    /// argument is outside the vector rounding's range.
    @inline(__always) func vectorChunk(_ y: Int, _ z: Int, _ i: Int, _ bp: UnsafeMutablePointer<UInt8>) -> Bool {
        let n = shape, planeStride = n.x * n.y
        var valid = true
        valid = axis(i, 1, axis: 0, edge: true, before: true, after: true, bp) && valid
        valid = axis(i, n.x, axis: 1, edge: y + 1 < n.y, before: y >= 1, after: y + 2 < n.y, bp) && valid
        valid = axis(i, planeStride, axis: 2, edge: z + 1 < n.z, before: z >= 1, after: z + 2 < n.z, bp) && valid
        return valid
    }

    // Swift's SIMD comparisons and selections compile to lane-by-lane loops, so the vector code
    // below compares and selects with integer arithmetic on the IEEE bit patterns instead.

    @inline(__always) static func bits(_ v: SIMD8<Float>) -> SIMD8<UInt32> { unsafeBitCast(v, to: SIMD8<UInt32>.self) }
    @inline(__always) static func float(_ v: SIMD8<UInt32>) -> SIMD8<Float> { unsafeBitCast(v, to: SIMD8<Float>.self) }

    /// 1 where the non-negative bit patterns satisfy a < b, else 0 (a, b < 2³¹).
    @inline(__always) static func below(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> SIMD8<UInt32> {
        (a &- b) &>> 31
    }

    /// wrapPhase lane by lane, bit for bit where |x/2π| < 2.5 (up to the sign of a zero result,
    /// which every use removes with abs): x − 2π·k with k = round-half-away(x/2π) assembled from
    /// the steps |x/2π| ≥ 0.5 and ≥ 1.5 (exact there: x/2π − trunc(x/2π) is exact, so the scalar
    /// rounding is these comparisons); 2π·2 = 2π + 2π exactly. Lanes outside that range or NaN
    /// set bit 31 of `bad`.
    @inline(__always) static func wrapLanes(_ x: SIMD8<Float>, _ bad: inout SIMD8<UInt32>) -> SIMD8<Float> {
        let r = x / SIMD8<Float>(repeating: 2 * Float.pi)
        let magnitude = bits(r) & SIMD8(repeating: 0x7FFF_FFFF)
        let step1 = below(magnitude, SIMD8(repeating: (0.5 as Float).bitPattern)) &- 1   // all ones where |r| ≥ 0.5
        let step2 = below(magnitude, SIMD8(repeating: (1.5 as Float).bitPattern)) &- 1
        bad |= ~(below(magnitude, SIMD8(repeating: (2.5 as Float).bitPattern)) &<< 31)
        let twoPi = SIMD8<UInt32>(repeating: (2 * Float.pi).bitPattern)
        let multiple = float(twoPi & step1) + float(twoPi & step2)
        return x - float(bits(multiple) | (bits(r) & SIMD8(repeating: 0x8000_0000)))
    }

    /// |v| lane by lane (the sign bit cleared, as abs).
    @inline(__always) static func magnitudes(_ v: SIMD8<Double>) -> SIMD8<Double> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt64>.self) & SIMD8(repeating: 0x7FFF_FFFF_FFFF_FFFF), to: SIMD8<Double>.self)
    }

    /// max(0, v) lane by lane for finite v, as (v + |v|)/2: exact (v + v doubles exactly; −v + v is
    /// +0). Only −0 differs (+0 here), and 0.1 + 0.9·(±0) is the same.
    @inline(__always) static func nonNegative(_ v: SIMD8<Double>) -> SIMD8<Double> {
        (v + magnitudes(v)) * 0.5
    }

    /// Bins of the edges along one axis (stride s) from the eight voxels at i; `edge`, `before`,
    /// `after` are the grid bounds of j, i − s and j + s (the same for every lane). False when a
    /// lane is outside the vector code's range (nothing written then is trusted).
    @inline(__always) func axis(_ i: Int, _ s: Int, axis: Int, edge: Bool, before: Bool, after: Bool,
                                _ bp: UnsafeMutablePointer<UInt8>) -> Bool {
        guard edge else {
            for lane in 0..<8 { bp[3 * (i + lane) + axis] = 0 }
            return true
        }
        let pp = phase
        var bad = SIMD8<UInt32>.zero
        let pi = pp.vector(at: i), pj = pp.vector(at: i + s)
        let d = widened(Self.wrapLanes(pj - pi, &bad))
        let one = SIMD8<Double>(repeating: 1), tenth = SIMD8<Double>(repeating: 0.1)
        let nineTenths = SIMD8<Double>(repeating: 0.9), two = SIMD8<Double>(repeating: 2)
        // (1·coherence)·gradient in the scalar order; 1·x = x exactly.
        var front = one
        if useCoherence {
            let coherence: SIMD8<Double> = one - Self.magnitudes(d) / SIMD8<Double>(repeating: Double.pi)
            front *= tenth + nineTenths * coherence
        }
        if useGradient, let second {
            let d2 = widened(Self.wrapLanes(second.vector(at: i + s) - second.vector(at: i), &bad))
            let mismatch: SIMD8<Double> = Self.magnitudes(d - d2 * SIMD8<Double>(repeating: teRatio))
            front *= tenth + nineTenths * Self.nonNegative(one - mismatch)
        }
        var linearBefore = one, linearAfter = one
        if useLinearity {
            let twice = SIMD8<Float>(repeating: 2)
            if before {
                let w = Self.wrapLanes(pp.vector(at: i - s) - twice * pi + pj, &bad)
                linearBefore = Self.nonNegative(one - Self.magnitudes(widened(w)) / two)
            }
            if after {
                let w = Self.wrapLanes(pi - twice * pj + pp.vector(at: i + 2 * s), &bad)
                linearAfter = Self.nonNegative(one - Self.magnitudes(widened(w)) / two)
            }
        }
        var back = one
        if useMagnitude, let magnitude {
            // Swift's max(a, b) = b ≥ a ? b : a and min(a, b) = b < a ? b : a, by bit-pattern order,
            // valid for non-negative finite values (others: bit 31 of `bad` via the sign bit of
            // the pattern or of the pattern + 2²³, which carries into it from infinity and NaN).
            let a = Self.bits(magnitude.vector(at: i)), b = Self.bits(magnitude.vector(at: i + s))
            bad |= a | (a &+ SIMD8(repeating: 0x0080_0000)) | b | (b &+ SIMD8(repeating: 0x0080_0000))
            let bBelow = 0 &- Self.below(b, a)
            let smaller = (a & ~bBelow) | (b & bBelow), larger = (b & ~bBelow) | (a & bBelow)
            // max(a, b) > 0 ? min/max : 0 — where the larger is 0 the smaller is too: 0/1 = 0.
            let zero = 0 &- Self.below(larger, SIMD8(repeating: 1))
            let divisor = Self.float(larger | (SIMD8(repeating: (1 as Float).bitPattern) & zero))
            let ratio = widened(Self.float(smaller)) / widened(divisor)
            back = tenth + nineTenths * ratio * ratio
        }
        let flags = unsafeBitCast(bad, to: SIMD4<UInt64>.self)
        guard (flags[0] | flags[1] | flags[2] | flags[3]) & 0x8000_0000_8000_0000 == 0 else { return false }
        let mp = inside
        // The weight in lanes: f = (1·before)·after with 1 for a neighbour outside the mask
        // (selected by bit masks from the mask bytes), then ((front·(0.1 + 0.9·f))·back), and
        // (1 − weight)·255 rounded half away from zero, all in the scalar order.
        var weight = front
        if useLinearity {
            let f = Self.selected(linearBefore, where: before ? mp.base + i - s : nil)
                * Self.selected(linearAfter, where: after ? mp.base + i + 2 * s : nil)
            weight *= tenth + nineTenths * f
        }
        if useMagnitude { weight *= back }
        guard let rounded = Self.roundedLanes((one - weight) * 255) else {
            for lane in 0..<8 {
                let k = i + lane
                guard mp[k] && mp[k + s] else { bp[3 * k + axis] = 0; continue }
                bp[3 * k + axis] = UInt8(Self.quantised(weight[lane]))
            }
            return true
        }
        for lane in 0..<8 {
            let k = i + lane
            // Swift's max(1, min(255, r)), as `quantised`.
            let r = rounded[lane], clamped = r < 255 ? r : 255
            bp[3 * k + axis] = mp[k] && mp[k + s] ? UInt8(clamped >= 1 ? clamped : 1) : 0
        }
        return true
    }

    /// `values` where the eight mask bytes from `inside` are true, 1 elsewhere (all 1 for nil).
    @inline(__always) static func selected(_ values: SIMD8<Double>, where inside: UnsafePointer<Bool>?) -> SIMD8<Double> {
        guard let inside else { return SIMD8(repeating: 1) }
        let bytes = UnsafeRawPointer(inside).loadUnaligned(as: UInt64.self)
        let lanes = SIMD8<UInt64>(repeating: bytes) & SIMD8(0xFF, 0xFF00, 0xFF_0000, 0xFF00_0000, 0xFF_0000_0000,
                                                            0xFF00_0000_0000, 0xFF_0000_0000_0000, 0xFF00_0000_0000_0000)
        let set = 0 &- ((lanes | (0 &- lanes)) &>> 63)           // all ones where the byte is non-zero
        let valueBits = unsafeBitCast(values, to: SIMD8<UInt64>.self)
        let oneBits = SIMD8<UInt64>(repeating: (1.0 as Double).bitPattern)
        return unsafeBitCast((valueBits & set) | (oneBits & ~set), to: SIMD8<Double>.self)
    }

    /// roundedHalfAway lane by lane, bit for bit, for |x| < 2⁵¹ (else nil): round to nearest even
    /// by adding and subtracting 1.5·2⁵² (exact there), then one more in magnitude where the
    /// remainder is 0.5 with the sign of x, and the sign of x (also on a zero result).
    @inline(__always) static func roundedLanes(_ x: SIMD8<Double>) -> SIMD8<Double>? {
        @inline(__always) func bits(_ v: SIMD8<Double>) -> SIMD8<UInt64> { unsafeBitCast(v, to: SIMD8<UInt64>.self) }
        @inline(__always) func double(_ v: SIMD8<UInt64>) -> SIMD8<Double> { unsafeBitCast(v, to: SIMD8<Double>.self) }
        let sign = SIMD8<UInt64>(repeating: 1 << 63)
        let valid = ((bits(x) & ~sign) &- SIMD8(repeating: (0x1p51 as Double).bitPattern)) &>> 63
        guard valid[0] & valid[1] & valid[2] & valid[3] & valid[4] & valid[5] & valid[6] & valid[7] == 1 else { return nil }
        let magic = SIMD8<Double>(repeating: 0x1.8p52)
        let nearest = (x + magic) - magic
        let tie = (bits(x - nearest) ^ (bits(x) & sign)) ^ SIMD8(repeating: (0.5 as Double).bitPattern)
        let isTie = ~(tie | (0 &- tie)) &>> 63
        let extra = SIMD8<UInt64>(repeating: (1.0 as Double).bitPattern) & (0 &- isTie)
        let magnitude = double(bits(nearest) & ~sign) + double(extra)
        return double(bits(magnitude) | (bits(x) & sign))
    }
}
