import QSMCore

/// Binary morphology on masks with 6-connectivity (face neighbours), treating outside the array as background.
enum Morphology {
    /// Removes every voxel with a face neighbour outside the mask (or on the array face), `times` times.
    static func erode(_ mask: [Bool], shape n: SIMD3<Int>, times: Int) -> [Bool] {
        var current = mask
        for _ in 0..<times {
            let source = current
            var next = [Bool](repeating: false, count: source.count)
            next.withUnsafeMutableBufferPointer { nb in
                source.withUnsafeBufferPointer { sb in
                    let np = SendablePointer(nb.baseAddress!), sp = ReadPointer(sb.baseAddress!)
                    let sz = n.x * n.y
                    parallelFor(1..<max(1, n.z - 1)) { zs in
                        for z in zs { for y in 1..<max(1, n.y - 1) {
                            let row = n.x * (y + n.y * z)
                            for i in row + 1..<row + max(1, n.x - 1) where sp[i] {
                                np[i] = sp[i - 1] && sp[i + 1] && sp[i - n.x] && sp[i + n.x] && sp[i - sz] && sp[i + sz]
                            }
                        } }
                    }
                }
            }
            current = next
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
    /// The flood runs inside the mask's bounding box grown by one voxel: everything outside that
    /// box is background connected to the faces, and the grown box's own faces are background too.
    static func fillHoles(_ mask: [Bool], shape n: SIMD3<Int>) -> [Bool] {
        var (lo, hi) = boundingBox(mask, shape: n)
        guard hi.x >= 0 else { return mask }
        lo = pointwiseMax(lo &- 1, .zero)
        hi = pointwiseMin(hi &+ 1, n &- 1)
        var outside = [Bool](repeating: false, count: mask.count)
        var stack: [Int32] = []
        stack.reserveCapacity(1 << 16)
        for z in lo.z...hi.z { for y in lo.y...hi.y { for x in lo.x...hi.x
            where x == lo.x || y == lo.y || z == lo.z || x == hi.x || y == hi.y || z == hi.z {
            let i = x + n.x * (y + n.y * z)
            if !mask[i] && !outside[i] { outside[i] = true; stack.append(Int32(i)) }
        } } }
        // Scanline flood: each popped seed fills its whole x run, then seeds one voxel per run of
        // fillable voxels in the four neighbouring rows under it (coordinates once per run, rows
        // read sequentially), the same 6-connected set as a voxel-by-voxel flood.
        let sz = n.x * n.y
        mask.withUnsafeBufferPointer { mb in outside.withUnsafeMutableBufferPointer { ob in
            let m = mb.baseAddress!, o = ob.baseAddress!
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
            while let top = stack.popLast() {
                let i = Int(top)
                let z = i / sz, y = (i / n.x) % n.y
                let row = n.x * (y + n.y * z)
                var left = i - row, right = left
                while left > lo.x && !m[row + left - 1] && !o[row + left - 1] { left -= 1 }
                while right < hi.x && !m[row + right + 1] && !o[row + right + 1] { right += 1 }
                for x in left...right { o[row + x] = true }
                if y > lo.y { seedRuns(row: row - n.x, left, right) }
                if y < hi.y { seedRuns(row: row + n.x, left, right) }
                if z > lo.z { seedRuns(row: row - sz, left, right) }
                if z < hi.z { seedRuns(row: row + sz, left, right) }
            }
        } }
        // Inside the box: mask or enclosed background; outside the box: unchanged (background).
        var filled = mask
        for z in lo.z...hi.z { for y in lo.y...hi.y {
            let row = n.x * (y + n.y * z)
            for x in lo.x...hi.x where !outside[row + x] { filled[row + x] = true }
        } }
        return filled
    }
}
