/// The priority queue of region-growing unwrapping: pops the lowest (bin, value) pair first.
///
/// A bucket queue over the 255 quality bins, as in ROMEO (Dymerska et al. 2021,
/// doi:10.1002/mrm.28563), whose bins are binary min-heaps of the values (Williams JWJ. Algorithm
/// 232: Heapsort. Commun ACM 1964;7:347–348. doi:10.1145/512274.512284). The order is exactly that
/// of one heap on (bin, value) keys, so the growth is deterministic and independent of push order
/// within a bin; ROMEO's last-in-first-out bins were measured to change which aliased voxels end
/// up 2π off on the noisy head (docs in RegionGrowingUnwrapping). Bin heaps hold a fraction of the
/// queue, so sift paths are shorter than in one heap, and finding the bin is O(1) amortised.
struct BucketQueue {
    private var heaps: [[Int]]
    /// No bin below this one holds an entry.
    private var lowest: Int

    /// An empty queue for bins 0…255.
    init() {
        heaps = [[Int]](repeating: [], count: 256)
        lowest = 256
    }

    /// Adds `value` to `bin`.
    @inline(__always) mutating func push(_ value: Int, bin: UInt8) {
        let b = Int(bin)
        if b < lowest { lowest = b }
        Self.push(value, into: &heaps[b])
    }

    /// The smallest value of the lowest non-empty bin; nil when empty.
    @inline(__always) mutating func pop() -> Int? {
        while lowest < 256 {
            if !heaps[lowest].isEmpty { return Self.pop(&heaps[lowest]) }
            lowest += 1
        }
        return nil
    }

    @inline(__always) private static func push(_ value: Int, into keys: inout [Int]) {
        keys.append(value)
        keys.withUnsafeMutableBufferPointer { k in
            var child = k.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard value < k[parent] else { break }
                k[child] = k[parent]
                child = parent
            }
            k[child] = value
        }
    }

    @inline(__always) private static func pop(_ keys: inout [Int]) -> Int {
        let last = keys.removeLast()
        guard !keys.isEmpty else { return last }
        return keys.withUnsafeMutableBufferPointer { k in
            let top = k[0], n = k.count
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < n else { break }
                let right = left + 1
                let child = right < n && k[right] < k[left] ? right : left
                guard k[child] < last else { break }
                k[parent] = k[child]
                parent = child
            }
            k[parent] = last
            return top
        }
    }
}
