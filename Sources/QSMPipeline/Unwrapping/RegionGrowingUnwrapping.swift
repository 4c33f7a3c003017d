import QSMCore

/// Quality-guided region-growing unwrapping with ROMEO-like edge weights.
///
/// After Dymerska B, Eckstein K, Bachrata B, Siow B, Trattnig S, Shmueli K, Robinson SD. Phase
/// unwrapping with a rapid opensource minimum spanning tree algorithm (ROMEO). MRM 2021;85:2294–2308.
/// doi:10.1002/mrm.28563 (QSM.md §3.2). Not ROMEO itself: a binary heap replaces the bucket queue,
/// every disconnected part of the mask gets its own seed, and the temporal step differs (below).
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
        /// Echo unwrapped spatially (1-based), ≥ 1. Default 1 (ROMEO.jl `template = 1`).
        public var templateEcho = 1
        /// Unwrap every echo spatially instead of temporally. Default false (ROMEO.jl `individual = false`).
        public var individual = false
        /// Use the phase-coherence weight. Default true (ROMEO.jl `:romeo` weights).
        public var phaseCoherence = true
        /// Use the phase-gradient-coherence weight (needs ≥ 2 echoes). Default true (ROMEO.jl `:romeo`).
        public var phaseGradientCoherence = true
        /// Use the phase-linearity weight. Default true (ROMEO.jl `:romeo`).
        public var phaseLinearity = true
        /// Use the magnitude-coherence weight (needs magnitude). Default true (ROMEO.jl `:romeo`).
        public var magnitudeCoherence = true
        /// The ROMEO.jl defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.integer("templateEcho", \.templateEcho, in: 1...1000, "Echo unwrapped spatially, 1-based. Default 1 (ROMEO.jl template)."),
             .flag("individual", \.individual, "Unwrap each echo spatially. Default false (ROMEO.jl individual)."),
             .flag("phaseCoherence", \.phaseCoherence, "Phase-coherence weight. Default true (ROMEO.jl :romeo)."),
             .flag("phaseGradientCoherence", \.phaseGradientCoherence, "Phase-gradient-coherence weight. Default true (ROMEO.jl :romeo)."),
             .flag("phaseLinearity", \.phaseLinearity, "Phase-linearity weight. Default true (ROMEO.jl :romeo)."),
             .flag("magnitudeCoherence", \.magnitudeCoherence, "Magnitude-coherence weight. Default true (ROMEO.jl :romeo).")]
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
        guard mask.insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
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
        var frames = (0..<echoes).map { wrappedPhase.frame($0) }
        for e in 0..<echoes { try frames[e].requireFinite(in: mask, "phase echo \(e + 1)") }
        let order = temporal ? [template] : Array(0..<echoes)
        for e in order {
            let second = echoes > 1 && context.echoTimes.count == echoes ? (e + 1 < echoes ? e + 1 : e - 1) : nil
            frames[e].voxels = grow(phase: frames[e].voxels, second: second.map { frames[$0].voxels },
                                    teRatio: second.map { context.echoTimes[e] / context.echoTimes[$0] } ?? 1,
                                    magnitude: magnitude?.frame(e).voxels, mask: mask)
        }
        if temporal {
            let te = context.echoTimes
            func unwrapTemporally(_ e: Int, from near: Int, _ further: Int?) {
                let n = mask.grid.count
                for i in 0..<n where mask.voxels[i] {
                    let a = Double(frames[near].voxels[i])
                    var predicted = a * te[e] / te[near]
                    if let b = further.map({ Double(frames[$0].voxels[i]) }) {
                        predicted = a + (a - b) * (te[e] - te[near]) / (te[near] - te[further!])
                    }
                    let p = Double(frames[e].voxels[i])
                    frames[e].voxels[i] = Float(p - 2 * Double.pi * ((p - predicted) / (2 * Double.pi)).rounded())
                }
            }
            for e in (template + 1)..<max(template + 1, echoes) { unwrapTemporally(e, from: e - 1, e - 2 >= template ? e - 2 : nil) }
            for e in stride(from: template - 1, through: 0, by: -1) { unwrapTemporally(e, from: e + 1, e + 2 <= template ? e + 2 : nil) }
        }
        for e in 0..<echoes { frames[e] = frames[e].masked(by: mask) }
        return try Volume.stacking(frames)
    }

    /// Region growing over the mask; returns the unwrapped copy of `phase`.
    func grow(phase input: [Float], second: [Float]?, teRatio: Double, magnitude: [Float]?, mask: Mask) -> [Float] {
        let n = mask.grid.shape, count = mask.grid.count
        let strides = [1, n.x, n.x * n.y]
        let inside = mask.voxels
        var phase = input
        // Edge e = 3·i + axis joins i and i + stride[axis]; bin 0 = no edge, 1 (best) … 255 (worst).
        var bins = [UInt8](repeating: 0, count: 3 * count)
        let useGradient = parameters.phaseGradientCoherence && second != nil
        let useMagnitude = parameters.magnitudeCoherence && magnitude != nil
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x {
            let i = x + n.x * (y + n.y * z)
            guard inside[i] else { continue }
            let position = [x, y, z]
            for axis in 0..<3 where position[axis] + 1 < n[axis] {
                let s = strides[axis], j = i + s
                guard inside[j] else { continue }
                var weight = 1.0
                let d = Double(wrapPhase(phase[j] - phase[i]))
                if parameters.phaseCoherence { weight *= 0.1 + 0.9 * (1 - abs(d) / Double.pi) }
                if useGradient, let second {
                    let d2 = Double(wrapPhase(second[j] - second[i]))
                    weight *= 0.1 + 0.9 * max(0, 1 - abs(d - d2 * teRatio))
                }
                if parameters.phaseLinearity {
                    var f = 1.0
                    if position[axis] >= 1 && inside[i - s] {
                        f *= max(0, 1 - abs(Double(wrapPhase(phase[i - s] - 2 * phase[i] + phase[j]))) / 2)
                    }
                    if position[axis] + 2 < n[axis] && inside[j + s] {
                        f *= max(0, 1 - abs(Double(wrapPhase(phase[i] - 2 * phase[j] + phase[j + s]))) / 2)
                    }
                    weight *= 0.1 + 0.9 * f
                }
                if useMagnitude, let magnitude {
                    let a = Double(magnitude[i]), b = Double(magnitude[j])
                    let ratio = max(a, b) > 0 ? min(a, b) / max(a, b) : 0
                    weight *= 0.1 + 0.9 * ratio * ratio
                }
                bins[3 * i + axis] = UInt8(max(1, min(255, ((1 - weight) * 255).rounded())))
            }
        } } }
        var visited = [Bool](repeating: false, count: count)
        var heap = BinaryHeap()
        func pushEdges(of i: Int) {
            for axis in 0..<3 {
                let forward = bins[3 * i + axis]
                if forward != 0 && !visited[i + strides[axis]] { heap.push(UInt64(forward) << 40 | UInt64(3 * i + axis)) }
                let j = i - strides[axis]
                if j >= 0 {
                    let backward = bins[3 * j + axis]
                    if backward != 0 && !visited[j] { heap.push(UInt64(backward) << 40 | UInt64(3 * j + axis)) }
                }
            }
        }
        // Seeds: unvisited mask voxels in order of the best (lowest) sum of their three forward
        // edge bins, a missing edge counting as the worst bin; one seed per disconnected region.
        var candidates: [UInt64] = []
        for i in 0..<count where inside[i] {
            var sum = 0
            for axis in 0..<3 { let b = Int(bins[3 * i + axis]); sum += b == 0 ? 256 : b }
            candidates.append(UInt64(sum) << 40 | UInt64(i))
        }
        candidates.sort()
        for candidate in candidates {
            let seed = Int(candidate & 0xFF_FFFF_FFFF)
            guard !visited[seed] else { continue }
            visited[seed] = true
            pushEdges(of: seed)
            while let key = heap.pop() {
                let edge = Int(key & 0xFF_FFFF_FFFF)
                let i = edge / 3, j = i + strides[edge % 3]
                guard visited[i] != visited[j] else { continue }
                let (from, to) = visited[i] ? (i, j) : (j, i)
                let difference = phase[to] - phase[from]
                phase[to] -= 2 * Float.pi * (difference / (2 * Float.pi)).rounded()
                visited[to] = true
                pushEdges(of: to)
            }
        }
        return phase
    }
}
