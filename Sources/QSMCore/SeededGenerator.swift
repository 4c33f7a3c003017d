/// A seeded, repeatable random generator (xoshiro256**, seeded through SplitMix64).
///
/// Blackman D, Vigna S. "Scrambled linear pseudorandom number generators." ACM TOMS 2021;47(4):36.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose sequence depends only on `seed`.
    public init(seed: UInt64) {
        var s = seed
        state = (SplitMix64.next(&s), SplitMix64.next(&s), SplitMix64.next(&s), SplitMix64.next(&s))
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0; state.3 ^= state.1; state.1 ^= state.2; state.0 ^= state.3
        state.2 ^= t; state.3 = rotl(state.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// SplitMix64 (Steele, Lea, Flood; OOPSLA 2014): a counter-based mixer.
public enum SplitMix64 {
    /// Advances `state` and returns its next output.
    @inlinable public static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix(state)
    }

    /// The finaliser alone: a bijective hash of `value`.
    @inlinable public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Standard normal deviates addressed by (seed, stream, index): the same value whatever thread
/// or order computes it, so noise is identical on any thread count.
public struct CounterGaussian: Sendable {
    /// The seed.
    public let seed: UInt64
    /// A source for `seed`.
    public init(seed: UInt64) { self.seed = seed }

    /// Two independent N(0, 1) deviates for element `index` of stream `stream` (Box–Muller).
    @inlinable public func pair(stream: UInt64, index: UInt64) -> (Double, Double) {
        let base = SplitMix64.mix(seed ^ SplitMix64.mix(stream &+ 0x632B_E59B_D9B4_E019)) &+ index &* 2
        let u1 = (Double(SplitMix64.mix(base) >> 11) + 0.5) / 9_007_199_254_740_992.0
        let u2 = Double(SplitMix64.mix(base &+ 1) >> 11) / 9_007_199_254_740_992.0
        let r = (-2 * _log(u1)).squareRoot()
        return (r * _cos(2 * .pi * u2), r * _sin(2 * .pi * u2))
    }
}
