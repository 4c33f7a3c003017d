import QSMCore

/// The ventricular CSF mask of MEDI+0 and the R2* map it is drawn from.
///
/// Liu Z, Spincemaille P, Yao Y, Zhang Y, Wang Y. MEDI+0: Morphology enabled dipole inversion with
/// automatic uniform cerebrospinal fluid zero reference for quantitative susceptibility mapping.
/// MRM 2018;79:2795–2803. doi:10.1002/mrm.26946. As the MEDI toolbox's `extract_CSF.m`: voxels of
/// the mask with R2* below a threshold (CSF's long T2*); among those within a sphere around the
/// mask's centroid, the largest 26-connected components are the ventricles; the mask is every
/// low-R2* component of the whole mask that touches them (region growing from the ventricles).
public enum CSFMask {
    /// The CSF mask from an R2* map (s⁻¹): `threshold` (s⁻¹), `centreRadius` (mm), `seeds` components.
    public static func ventricles(r2star: Volume<Float>, mask: Mask, threshold: Double = 5, centreRadius: Double = 30,
                                  seeds: Int = 2) throws(QSMError) -> Mask {
        try r2star.grid.requireMatches(mask.grid, "R2* map", "mask")
        let grid = mask.grid, n = grid.shape, size = grid.voxelSize
        guard mask.insideCount > 0 else { throw .invalidParameter("CSF mask", "the brain mask is empty") }
        var low = [Bool](repeating: false, count: grid.count)
        for i in 0..<grid.count where mask.voxels[i] {
            let r = r2star.voxels[i]
            low[i] = r.isFinite && Double(r) < threshold
        }
        // Centroid of the mask in mm; the sphere around it holds the lateral and third ventricles.
        var centre = SIMD3<Double>(repeating: 0)
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x where mask.voxels[grid.index(x, y, z)] {
            centre += SIMD3(Double(x), Double(y), Double(z)) * size
        } } }
        centre /= Double(mask.insideCount)
        var central = low
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x {
            let i = grid.index(x, y, z)
            guard central[i] else { continue }
            let d = SIMD3(Double(x), Double(y), Double(z)) * size - centre
            central[i] = (d * d).sum() <= centreRadius * centreRadius
        } } }
        let components = connectedComponents(central, shape: n).sorted { $0.count > $1.count }
        guard !components.isEmpty else {
            throw .invalidParameter("CSF mask", "no voxel with R2* below \(threshold) s⁻¹ within \(centreRadius) mm of the mask's centre")
        }
        var out = Mask(grid: grid, repeating: false)
        var queue: [Int] = []
        for component in components.prefix(seeds) {
            for i in component where !out.voxels[i] { out.voxels[i] = true; queue.append(i) }
        }
        // Grow through the low-R2* voxels of the whole mask (26-connected).
        var head = 0
        while head < queue.count {
            let i = queue[head]; head += 1
            forEachNeighbour(i, shape: n) { j in
                if low[j] && !out.voxels[j] { out.voxels[j] = true; queue.append(j) }
            }
        }
        return out
    }

    /// R2* (s⁻¹) by a log-linear least-squares fit of ln S = ln S₀ − TE·R2* with weights S²
    /// (the log's variance is σ²/S²), from magnitude with one frame per echo; 0 outside the mask or
    /// where fewer than two echoes have signal.
    public static func r2star(magnitude: Volume<Float>, echoTimes: [Double], mask: Mask) throws(QSMError) -> Volume<Float> {
        try magnitude.grid.requireMatches(mask.grid, "magnitude", "mask")
        guard magnitude.frames >= 2, magnitude.frames == echoTimes.count else {
            throw .mismatch("magnitude", "has \(magnitude.frames) echoes and there are \(echoTimes.count) echo times; R2* needs ≥ 2 of each, one per echo")
        }
        let count = mask.grid.count
        var out = Volume<Float>(zeros: mask.grid)
        for i in 0..<count where mask.voxels[i] {
            var sw = 0.0, st = 0.0, sl = 0.0, stt = 0.0, stl = 0.0, used = 0
            for (e, te) in echoTimes.enumerated() {
                let s = Double(magnitude.voxels[e * count + i])
                guard s > 0, s.isFinite else { continue }
                let w = s * s, l = Double.log(s)
                sw += w; st += w * te; sl += w * l; stt += w * te * te; stl += w * te * l; used += 1
            }
            let denominator = sw * stt - st * st
            guard used >= 2, denominator > 0 else { continue }
            out.voxels[i] = Float(-(sw * stl - st * sl) / denominator)
        }
        return out
    }

    /// 26-connected components of `set`, each a list of voxel indices.
    static func connectedComponents(_ set: [Bool], shape: SIMD3<Int>) -> [[Int]] {
        var seen = [Bool](repeating: false, count: set.count)
        var components: [[Int]] = []
        for start in 0..<set.count where set[start] && !seen[start] {
            var component = [start]
            seen[start] = true
            var head = 0
            while head < component.count {
                let i = component[head]; head += 1
                forEachNeighbour(i, shape: shape) { j in
                    if set[j] && !seen[j] { seen[j] = true; component.append(j) }
                }
            }
            components.append(component)
        }
        return components
    }

    /// Calls `body` with each of the up to 26 neighbours of voxel `i` inside the grid.
    @inline(__always)
    static func forEachNeighbour(_ i: Int, shape n: SIMD3<Int>, _ body: (Int) -> Void) {
        let x = i % n.x, y = (i / n.x) % n.y, z = i / (n.x * n.y)
        for dz in -1...1 where z + dz >= 0 && z + dz < n.z {
            for dy in -1...1 where y + dy >= 0 && y + dy < n.y {
                for dx in -1...1 where x + dx >= 0 && x + dx < n.x && (dx, dy, dz) != (0, 0, 0) {
                    body(x + dx + n.x * (y + dy + n.y * (z + dz)))
                }
            }
        }
    }
}
