import QSMCore

/// Binary morphology on masks with 6-connectivity (face neighbours), treating outside the array as background.
enum Morphology {
    /// Removes every voxel with a face neighbour outside the mask (or on the array face), `times` times.
    static func erode(_ mask: [Bool], shape n: SIMD3<Int>, times: Int) -> [Bool] {
        guard !mask.isEmpty else { return mask }
        var current = mask
        for _ in 0..<times {
            let source = current
            // Every voxel written once, in parallel (no serial zero fill first).
            current = [Bool](unsafeUninitializedCapacity: source.count) { nb, initialized in
                source.withUnsafeBufferPointer { sb in
                    let np = SendablePointer(nb.baseAddress!), sp = ReadPointer(sb.baseAddress!)
                    let sz = n.x * n.y
                    parallelFor(0..<n.z) { zs in
                        for z in zs { for y in 0..<n.y {
                            let row = n.x * (y + n.y * z)
                            guard z > 0 && z + 1 < n.z && y > 0 && y + 1 < n.y && n.x > 2 else {
                                (np.base + row).initialize(repeating: false, count: n.x)
                                continue
                            }
                            np[row] = false; np[row + n.x - 1] = false
                            // Eight voxels per step: a Bool is the byte 0 or 1, so the AND of the
                            // seven neighbourhoods' 8-byte words is the AND of each voxel's flags.
                            @inline(__always) func word(_ i: Int) -> UInt64 { UnsafeRawPointer(sp.base + i).loadUnaligned(as: UInt64.self) }
                            var i = row + 1
                            while i + 8 <= row + n.x - 1 {
                                let all = word(i) & word(i - 1) & word(i + 1) & word(i - n.x) & word(i + n.x) & word(i - sz) & word(i + sz)
                                UnsafeMutableRawPointer(np.base + i).storeBytes(of: all, as: UInt64.self)
                                i += 8
                            }
                            while i < row + n.x - 1 {
                                np[i] = sp[i] && sp[i - 1] && sp[i + 1] && sp[i - n.x] && sp[i + n.x] && sp[i - sz] && sp[i + sz]
                                i += 1
                            }
                        } }
                    }
                }
                initialized = source.count
            }
        }
        return current
    }

    /// The smallest and largest (x, y, z) of the mask's voxels; (shape, −1) when the mask is empty.
    /// Parallel over z slabs, each row scanned from both ends.
    static func boundingBox(_ mask: [Bool], shape n: SIMD3<Int>) -> (low: SIMD3<Int>, high: SIMD3<Int>) {
        let slabs = max(1, min(n.z, 16))
        var lows = [SIMD3<Int>](repeating: n, count: slabs), highs = [SIMD3<Int>](repeating: SIMD3(repeating: -1), count: slabs)
        mask.withUnsafeBufferPointer { mb in lows.withUnsafeMutableBufferPointer { lb in
            highs.withUnsafeMutableBufferPointer { hb in
                let mp = ReadPointer(mb.baseAddress!), lp = SendablePointer(lb.baseAddress!), hp = SendablePointer(hb.baseAddress!)
                parallelFor(0..<slabs, chunks: slabs) { slabRange in
                    for slab in slabRange {
                        var lo = n, hi = SIMD3<Int>(repeating: -1)
                        for z in n.z * slab / slabs..<n.z * (slab + 1) / slabs { for y in 0..<n.y {
                            let row = n.x * (y + n.y * z)
                            var first = 0
                            while first < n.x && !mp[row + first] { first += 1 }
                            guard first < n.x else { continue }
                            var last = n.x - 1
                            while !mp[row + last] { last -= 1 }
                            lo = pointwiseMin(lo, SIMD3(first, y, z)); hi = pointwiseMax(hi, SIMD3(last, y, z))
                        } }
                        lp[slab] = lo; hp[slab] = hi
                    }
                }
            }
        } }
        return (lows.reduce(n) { pointwiseMin($0, $1) }, highs.reduce(SIMD3(repeating: -1)) { pointwiseMax($0, $1) })
    }

    /// Fills background components that do not touch the array faces (6-connected flood fill).
    ///
    /// In each row, the background before the first and after the last mask voxel (or the whole
    /// row) reaches an array face along x, so it is marked outside in one parallel pass, as is all
    /// background of a row on a y or z face. What remains are the gaps between mask voxels of a row:
    /// those next to an outside voxel of a neighbouring row (or on a face) seed a scanline flood
    /// through the gaps, which is serial but small (the brain's concavities and holes). The same set
    /// as a flood from the faces through all background voxels.
    static func fillHoles(_ mask: [Bool], shape n: SIMD3<Int>) -> [Bool] {
        let count = mask.count, sz = n.x * n.y, rows = n.y * n.z
        guard count > 0 else { return mask }
        let slabs = max(1, min(n.z, 64))
        var seedLists = [[Int32]](repeating: [], count: slabs)
        var outside = [Bool](unsafeUninitializedCapacity: count) { ob, initialized in
            mask.withUnsafeBufferPointer { mb in
                let m = ReadPointer(mb.baseAddress!), o = SendablePointer(ob.baseAddress!)
                parallelFor(0..<rows) { rowRange in
                    for r in rowRange {
                        let row = n.x * r, y = r % n.y, z = r / n.y
                        guard y > 0 && y + 1 < n.y && z > 0 && z + 1 < n.z else {
                            for i in row..<row + n.x { o[i] = !m[i] }       // on a face: all background is outside
                            continue
                        }
                        var first = 0
                        while first < n.x && !m[row + first] { first += 1 }
                        guard first < n.x else {
                            (o.base + row).initialize(repeating: true, count: n.x)
                            continue
                        }
                        var last = n.x - 1
                        while !m[row + last] { last -= 1 }
                        (o.base + row).initialize(repeating: true, count: first)
                        (o.base + row + first).initialize(repeating: false, count: last - first + 1)
                        (o.base + row + last + 1).initialize(repeating: true, count: n.x - 1 - last)
                    }
                }
            }
            initialized = count
        }
        // Seeds: one voxel per gap run touching an outside voxel in a neighbouring row.
        mask.withUnsafeBufferPointer { mb in outside.withUnsafeBufferPointer { ob in
            seedLists.withUnsafeMutableBufferPointer { lb in
                let m = ReadPointer(mb.baseAddress!), o = ReadPointer(ob.baseAddress!), lists = SendablePointer(lb.baseAddress!)
                parallelFor(0..<slabs, chunks: slabs) { slabRange in
                    for slab in slabRange {
                        var seeds: [Int32] = []
                        let zLow = max(1, n.z * slab / slabs), zHigh = min(n.z - 1, n.z * (slab + 1) / slabs)
                        for z in stride(from: zLow, to: zHigh, by: 1) {
                            for y in 1..<max(1, n.y - 1) {
                                let row = n.x * (y + n.y * z)
                                var x = 0
                                while x < n.x {
                                    guard !m[row + x] && !o[row + x] else { x += 1; continue }
                                    var touches = false
                                    let start = x
                                    while x < n.x && !m[row + x] {
                                        let i = row + x
                                        touches = touches || o[i - n.x] || o[i + n.x] || o[i - sz] || o[i + sz]
                                        x += 1
                                    }
                                    if touches { seeds.append(Int32(row + start)) }
                                }
                            }
                        }
                        lists[slab] = seeds
                    }
                }
            }
        } }
        var stack = seedLists.flatMap { $0 }
        mask.withUnsafeBufferPointer { mb in outside.withUnsafeMutableBufferPointer { ob in
            let m = mb.baseAddress!, o = ob.baseAddress!
            for seed in stack { o[Int(seed)] = true }
            // Seeds are marked when pushed, so a run stops at pending seeds (they fill their own).
            func seedRuns(row neighbour: Int, _ left: Int, _ right: Int) {
                var inRun = false
                for x in left...right {
                    let fillable = !m[neighbour + x] && !o[neighbour + x]
                    if fillable && !inRun {
                        o[neighbour + x] = true
                        stack.append(Int32(neighbour + x))
                    }
                    inRun = fillable
                }
            }
            // Scanline flood: each popped seed fills its whole x run, then seeds one voxel per run
            // of fillable voxels in the four neighbouring rows under it.
            while let top = stack.popLast() {
                let i = Int(top)
                let z = i / sz, y = (i / n.x) % n.y
                let row = n.x * (y + n.y * z)
                var left = i - row, right = left
                while left > 0 && !m[row + left - 1] && !o[row + left - 1] { left -= 1 }
                while right < n.x - 1 && !m[row + right + 1] && !o[row + right + 1] { right += 1 }
                for x in left...right { o[row + x] = true }
                if y > 0 { seedRuns(row: row - n.x, left, right) }
                if y < n.y - 1 { seedRuns(row: row + n.x, left, right) }
                if z > 0 { seedRuns(row: row - sz, left, right) }
                if z < n.z - 1 { seedRuns(row: row + sz, left, right) }
            }
        } }
        // Filled: every voxel the faces do not reach through background (mask voxels are not outside).
        return [Bool](unsafeUninitializedCapacity: count) { fb, initialized in
            outside.withUnsafeBufferPointer { ob in
                let o = ReadPointer(ob.baseAddress!), f = SendablePointer(fb.baseAddress!)
                parallelFor(0..<count) { r in for i in r { f[i] = !o[i] } }
            }
            initialized = count
        }
    }
}
