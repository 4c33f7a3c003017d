import QSMCore

/// Binary morphology on masks with 6-connectivity (face neighbours), treating outside the array as background.
enum Morphology {
    /// Removes every voxel with a face neighbour outside the mask (or on the array face), `times` times.
    static func erode(_ mask: [Bool], shape n: SIMD3<Int>, times: Int) -> [Bool] {
        var current = mask
        for _ in 0..<times {
            var next = current
            for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x {
                let i = x + n.x * (y + n.y * z)
                guard current[i] else { continue }
                if x == 0 || y == 0 || z == 0 || x == n.x - 1 || y == n.y - 1 || z == n.z - 1
                    || !current[i - 1] || !current[i + 1] || !current[i - n.x] || !current[i + n.x]
                    || !current[i - n.x * n.y] || !current[i + n.x * n.y] { next[i] = false }
            } } }
            current = next
        }
        return current
    }

    /// Fills background components that do not touch the array faces (6-connected flood fill).
    static func fillHoles(_ mask: [Bool], shape n: SIMD3<Int>) -> [Bool] {
        var outside = [Bool](repeating: false, count: mask.count)
        var stack: [Int] = []
        func seed(_ i: Int) { if !mask[i] && !outside[i] { outside[i] = true; stack.append(i) } }
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x
            where x == 0 || y == 0 || z == 0 || x == n.x - 1 || y == n.y - 1 || z == n.z - 1 {
            seed(x + n.x * (y + n.y * z))
        } } }
        let sz = n.x * n.y
        while let i = stack.popLast() {
            let x = i % n.x, y = (i / n.x) % n.y, z = i / sz
            if x > 0 { seed(i - 1) }
            if x < n.x - 1 { seed(i + 1) }
            if y > 0 { seed(i - n.x) }
            if y < n.y - 1 { seed(i + n.x) }
            if z > 0 { seed(i - sz) }
            if z < n.z - 1 { seed(i + sz) }
        }
        return outside.map { !$0 }
    }
}
