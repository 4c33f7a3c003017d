/// A binary min-heap of UInt64 keys: the priority queue of quality-guided unwrapping.
///
/// Williams JWJ. Algorithm 232: Heapsort. Commun ACM 1964;7:347–348. doi:10.1145/512274.512284.
/// Keys pack (quality bin, edge index), so pops are deterministic: best bin first, ties by index.
struct BinaryHeap {
    private var keys: [UInt64] = []

    var isEmpty: Bool { keys.isEmpty }

    mutating func push(_ key: UInt64) {
        keys.append(key)
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard keys[child] < keys[parent] else { break }
            keys.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = keys.popLast() else { return nil }
        guard !keys.isEmpty else { return last }
        let top = keys[0]
        keys[0] = last
        var parent = 0
        let n = keys.count
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < n && keys[left] < keys[smallest] { smallest = left }
            if right < n && keys[right] < keys[smallest] { smallest = right }
            if smallest == parent { break }
            keys.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
