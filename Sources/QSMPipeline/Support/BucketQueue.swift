/// The priority queue of region-growing unwrapping: pops the lowest (bin, value) pair first.
///
/// A bucket queue over the 255 quality bins, as in ROMEO (Dymerska et al. 2021,
/// doi:10.1002/mrm.28563). Within a bin the values are split into at most 4096 blocks of
/// consecutive values (for edge indices at 256×256×176: 11 rows each), each a binary min-heap
/// (Williams JWJ. Algorithm 232: Heapsort. Commun ACM 1964;7:347–348. doi:10.1145/512274.512284),
/// with a two-level bitmap of the non-empty blocks. The order is exactly that of one heap on (bin, value)
/// keys, so the growth is deterministic and independent of the push order; ROMEO's last-in-
/// first-out bins were measured to change which aliased voxels of the noisy head end up 2π off.
/// The heaps stay small (one bin of a few rows of the growth front), so push and pop are short and
/// cache-resident. Values are stored in 32 bits.
struct BucketQueue {
    private static let blocks = 4096
    private var heaps: [[UInt32]]
    /// Per bin, 64 words of 64 bits: which blocks hold entries.
    private var occupied: [UInt64]
    /// Per bin, one word: which of its 64 `occupied` words are non-zero.
    private var summary: [UInt64]
    /// No bin below this one holds an entry.
    private var lowest = 256
    private let shift: Int

    /// An empty queue for values in 0..<`valueLimit` ≤ 2³² and bins 0…255.
    init(valueLimit: Int) {
        precondition(valueLimit <= 1 << 32, "BucketQueue holds 32-bit values")
        let bits = Int.bitWidth - max(1, valueLimit - 1).leadingZeroBitCount
        shift = max(0, bits - 12)
        heaps = [[UInt32]](repeating: [], count: 256 * Self.blocks)
        occupied = [UInt64](repeating: 0, count: 256 * 64)
        summary = [UInt64](repeating: 0, count: 256)
    }

    /// Adds `value` to `bin`.
    @inline(__always) mutating func push(_ value: Int, bin: UInt8) {
        let b = Int(bin), block = value >> shift
        if b < lowest { lowest = b }
        occupied[64 * b + block >> 6] |= 1 << UInt64(block & 63)
        summary[b] |= 1 << UInt64(block >> 6)
        Self.push(value, into: &heaps[Self.blocks * b + block])
    }

    /// The smallest value of the lowest non-empty bin; nil when empty.
    @inline(__always) mutating func pop() -> Int? {
        while lowest < 256 {
            let b = lowest
            if summary[b] != 0 {
                let word = summary[b].trailingZeroBitCount
                let block = 64 * word + occupied[64 * b + word].trailingZeroBitCount
                let index = Self.blocks * b + block
                let value = Self.pop(&heaps[index])
                if heaps[index].isEmpty {
                    occupied[64 * b + word] &= ~(1 << UInt64(block & 63))
                    if occupied[64 * b + word] == 0 { summary[b] &= ~(1 << UInt64(word)) }
                }
                return value
            }
            lowest += 1
        }
        return nil
    }

    // 8-ary heaps of 32-bit values: a node's children share one or two cache lines, and the depth
    // is a third of a binary heap's (the sift loops were the growth's hottest loads).
    private static let arity = 8

    @inline(__always) private static func push(_ value: Int, into keys: inout [UInt32]) {
        let key = UInt32(truncatingIfNeeded: value)
        keys.append(key)
        keys.withUnsafeMutableBufferPointer { k in
            var child = k.count - 1
            while child > 0 {
                let parent = (child - 1) / arity
                guard key < k[parent] else { break }
                k[child] = k[parent]
                child = parent
            }
            k[child] = key
        }
    }

    @inline(__always) private static func pop(_ keys: inout [UInt32]) -> Int {
        let last = keys.removeLast()
        guard !keys.isEmpty else { return Int(last) }
        return keys.withUnsafeMutableBufferPointer { k in
            let top = k[0], n = k.count
            var parent = 0
            while true {
                let first = arity * parent + 1
                guard first < n else { break }
                var child = first
                for c in first + 1..<min(first + arity, n) where k[c] < k[child] { child = c }
                guard k[child] < last else { break }
                k[parent] = k[child]
                parent = child
            }
            k[parent] = last
            return Int(top)
        }
    }
}
