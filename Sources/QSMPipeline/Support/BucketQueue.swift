/// The priority queue of region-growing unwrapping: pops the lowest (bin, value) pair first.
///
/// A bucket queue over the 255 quality bins, as in ROMEO (Dymerska et al. 2021,
/// doi:10.1002/mrm.28563). Within a bin the values are split into blocks of 2¹⁴ consecutive values
/// (16 rows of edge entries at 256×256×176), each a bitmap of its values with a summary word per
/// 64 words, allocated while the block holds entries; per bin, a bitmap of the non-empty blocks and
/// a summary of it. Push sets bits, pop takes the lowest set bit at each level (a van Emde Boas-like
/// hierarchy of 64-bit words): no sifting, whatever the number of entries. The order is exactly
/// that of one heap on (bin, value) keys, so the growth is deterministic and independent of the
/// push order; ROMEO's last-in-first-out bins were measured to change which aliased voxels of the
/// noisy head end up 2π off. A value is held once (region growing pushes every edge at most once).
/// The 8-ary heaps per block this replaces held ~1100 entries on average at 256×256×176 (the
/// smooth benchmark head fills few bins, and ties grow in raster order), and their sifts were the
/// growth's hottest loads.
///
/// Noncopyable, with its storage in manually managed buffers: the hot loop's accesses carry no
/// bounds, uniqueness or exclusivity checks (measured ~25 % of the growth with arrays).
struct BucketQueue: ~Copyable {
    private static let blockShift = 14
    /// Per block: 4 summary words (bit w: bitmap word w is non-zero), then 256 bitmap words.
    private static let chunkWords = 4 + 256
    private let blocksPerBin: Int
    /// Words per bin of `occupied` and of `summary`.
    private let occupiedWords: Int, summaryWords: Int
    /// Per (bin, block): 0 when the block is empty, else 1 + the index of its chunk in `words`.
    private let chunkOf: UnsafeMutablePointer<UInt32>
    /// The chunks, `chunkWords` each, `chunkCapacity` allocated, `chunkCount` in use; a released
    /// chunk is all zero and its number kept in `freeChunks` (`freeCount` of them) for reuse.
    private var words: UnsafeMutablePointer<UInt64>
    private var freeChunks: UnsafeMutablePointer<Int>
    private var chunkCapacity = 64, chunkCount = 0, freeCount = 0
    /// Per bin, `occupiedWords` words: which blocks hold entries.
    private let occupied: UnsafeMutablePointer<UInt64>
    /// Per bin, `summaryWords` words: which `occupied` words are non-zero.
    private let summary: UnsafeMutablePointer<UInt64>
    /// No bin below this one holds an entry.
    private var lowest = 256

    /// An empty queue for values in 0..<`valueLimit` ≤ 2³² and bins 0…255.
    init(valueLimit: Int) {
        precondition(valueLimit <= 1 << 32, "BucketQueue holds 32-bit values")
        blocksPerBin = max(1, (valueLimit + (1 << Self.blockShift) - 1) >> Self.blockShift)
        occupiedWords = (blocksPerBin + 63) / 64
        summaryWords = (occupiedWords + 63) / 64
        chunkOf = .allocate(capacity: 256 * blocksPerBin)
        chunkOf.initialize(repeating: 0, count: 256 * blocksPerBin)
        occupied = .allocate(capacity: 256 * occupiedWords)
        occupied.initialize(repeating: 0, count: 256 * occupiedWords)
        summary = .allocate(capacity: 256 * summaryWords)
        summary.initialize(repeating: 0, count: 256 * summaryWords)
        words = .allocate(capacity: chunkCapacity * Self.chunkWords)
        freeChunks = .allocate(capacity: chunkCapacity)
    }

    deinit {
        chunkOf.deallocate(); occupied.deallocate(); summary.deallocate()
        words.deallocate(); freeChunks.deallocate()
    }

    /// A zeroed chunk's number (1-based), reusing released ones first.
    private mutating func newChunk() -> Int {
        if freeCount > 0 { freeCount -= 1; return freeChunks[freeCount] }
        if chunkCount == chunkCapacity {
            let grown = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * chunkCapacity * Self.chunkWords)
            grown.moveInitialize(from: words, count: chunkCount * Self.chunkWords)
            words.deallocate()
            words = grown
            let grownFree = UnsafeMutablePointer<Int>.allocate(capacity: 2 * chunkCapacity)
            grownFree.moveInitialize(from: freeChunks, count: freeCount)
            freeChunks.deallocate()
            freeChunks = grownFree
            chunkCapacity *= 2
        }
        (words + chunkCount * Self.chunkWords).initialize(repeating: 0, count: Self.chunkWords)
        chunkCount += 1
        return chunkCount
    }

    /// Adds `value` to `bin`.
    @inline(__always) mutating func push(_ value: Int, bin: UInt8) {
        let b = Int(bin), block = value >> Self.blockShift
        if b < lowest { lowest = b }
        let slot = b &* blocksPerBin &+ block
        var chunk = Int(chunkOf[slot])
        if chunk == 0 {
            chunk = newChunk()
            chunkOf[slot] = UInt32(truncatingIfNeeded: chunk)
            occupied[b &* occupiedWords &+ block >> 6] |= 1 &<< UInt64(block & 63)
            summary[b &* summaryWords &+ block >> 12] |= 1 &<< UInt64((block >> 6) & 63)
        }
        let base = words + (chunk &- 1) &* Self.chunkWords
        let offset = value & ((1 << Self.blockShift) &- 1), word = offset >> 6
        base[word >> 6] |= 1 &<< UInt64(word & 63)
        base[4 &+ word] |= 1 &<< UInt64(offset & 63)
    }

    /// The smallest value of the lowest non-empty bin; nil when empty.
    @inline(__always) mutating func pop() -> Int? {
        while lowest < 256 {
            let b = lowest
            let binSummary = summary + (b &* summaryWords)
            var s = 0
            while s < summaryWords && binSummary[s] == 0 { s &+= 1 }
            if s < summaryWords {
                let occupiedIndex = 64 &* s &+ binSummary[s].trailingZeroBitCount
                let occupiedWord = occupied + (b &* occupiedWords &+ occupiedIndex)
                let block = 64 &* occupiedIndex &+ occupiedWord.pointee.trailingZeroBitCount
                let slot = b &* blocksPerBin &+ block
                let chunk = Int(chunkOf[slot]), base = words + (chunk &- 1) &* Self.chunkWords
                var c = 0
                while base[c] == 0 { c &+= 1 }
                let word = 64 &* c &+ base[c].trailingZeroBitCount
                let bits = base[4 &+ word]
                let value = block << Self.blockShift | word << 6 | bits.trailingZeroBitCount
                let rest = bits & (bits &- 1)
                base[4 &+ word] = rest
                if rest == 0 {
                    base[c] &= ~(1 &<< UInt64(word & 63))
                    if base[0] | base[1] | base[2] | base[3] == 0 {
                        chunkOf[slot] = 0
                        freeChunks[freeCount] = chunk
                        freeCount &+= 1
                        occupiedWord.pointee &= ~(1 &<< UInt64(block & 63))
                        if occupiedWord.pointee == 0 { binSummary[s] &= ~(1 &<< UInt64(occupiedIndex & 63)) }
                    }
                }
                return value
            }
            lowest &+= 1
        }
        return nil
    }
}
