import QSMCore

/// The spherical mean value (SMV) kernel: a normalised discrete ball of radius r (mm), in k-space.
///
/// s_r(x) = 1/|B_r| for |x| ≤ r on the voxel lattice (physical units), else 0, so Σ s_r = 1 and
/// s_r ⊛ h = h for harmonic h wherever the ball lies inside the region (QSM.md §6). Built in image
/// space and transformed (1 FFT), as QSM.jl `smv_kernel` and QSM.rs `kernels/smv.rs` do, so the
/// discrete mean-value property holds exactly for discretely harmonic fields up to rounding.
struct SMVKernel: Sendable {
    /// Ŝ_r on the half spectrum (real: the ball is symmetric).
    let spectrum: [Float]

    /// The lattice points of the ball of radius r (mm) in a periodic box, grouped by x–y plane, so
    /// a fused transform can write s_r plane by plane without a box-sized image of the ball.
    struct Ball: Sendable {
        /// |B_r|.
        let count: Int
        /// Box indices of the ball's points (offsets wrapped periodically), ascending.
        let offsets: [Int]
        /// `offsets[planeStart[z]..<planeStart[z + 1]]` lie in plane z.
        let planeStart: [Int]
        /// Points per x–y plane of the box.
        let planeSize: Int
        /// The ball's points as voxel displacements (dx, dy, dz).
        let displacements: [SIMD3<Int>]

        /// The ball of `radius` mm in a box of `shape`; throws (naming `parameter`) if the ball is
        /// one voxel or does not fit in the box.
        init(radius: Double, voxelSize: SIMD3<Double>, shape: SIMD3<Int>, parameter: String) throws(QSMError) {
            let reach = SMVKernel.reach(radius: radius, voxelSize: voxelSize)
            guard all(2 &* reach &+ 1 .<= shape) else {
                throw .invalidParameter(parameter, "radius \(radius) mm does not fit in the \(shape.x)×\(shape.y)×\(shape.z) grid")
            }
            var offsets: [Int] = [], displacements: [SIMD3<Int>] = []
            for dz in -reach.z...reach.z {
                for dy in -reach.y...reach.y {
                    for dx in -reach.x...reach.x {
                        let p = SIMD3(Double(dx), Double(dy), Double(dz)) * voxelSize
                        guard (p * p).sum() <= radius * radius * (1 + 1e-12) else { continue }
                        let x = (dx + shape.x) % shape.x, y = (dy + shape.y) % shape.y, z = (dz + shape.z) % shape.z
                        offsets.append(x + shape.x * (y + shape.y * z))
                        displacements.append(SIMD3(dx, dy, dz))
                    }
                }
            }
            guard offsets.count > 1 else {
                throw .invalidParameter(parameter, "radius \(radius) mm is smaller than one voxel (\(voxelSize.min()) mm)")
            }
            offsets.sort()
            planeSize = shape.x * shape.y
            var start = [Int](repeating: 0, count: shape.z + 1)
            for o in offsets { start[o / planeSize + 1] += 1 }
            for z in 0..<shape.z { start[z + 1] += start[z] }
            count = offsets.count
            self.offsets = offsets
            self.displacements = displacements
            planeStart = start
        }

        /// The planes holding points of the ball (near z = 0 and, wrapped, z = nz − 1).
        var planes: PlaneSupport {
            PlaneSupport(depth: planeStart.count - 1, ranges: (0..<(planeStart.count - 1)).filter { planeStart[$0 + 1] > planeStart[$0] }.map { $0..<($0 + 1) })
        }

        /// The value of s_r on the ball, 1/|B_r|.
        var value: Float { 1 / Float(count) }

        /// Writes plane z of s_r (nx·ny, x fastest) into `plane`.
        func load(_ z: Int, _ plane: UnsafeMutableBufferPointer<Float>) {
            let p = plane.baseAddress!, base = z * planeSize, v = value
            p.update(repeating: 0, count: planeSize)
            for k in planeStart[z]..<planeStart[z + 1] { p[offsets[k] - base] = v }
        }
    }

    /// The ball of `radius` mm (allocating its own buffers).
    init(radius: Double, voxelSize: SIMD3<Double>, spectral: Spectral, parameter: String) throws(QSMError) {
        let ball = try Ball(radius: radius, voxelSize: voxelSize, shape: spectral.shape, parameter: parameter)
        var image = [Float](repeating: 0, count: spectral.count)
        for o in ball.offsets { image[o] = ball.value }
        spectrum = spectral.forward(image).map { $0.real }
    }

    /// Ball reach in voxels per axis for `radius` mm.
    static func reach(radius: Double, voxelSize: SIMD3<Double>) -> SIMD3<Int> {
        SIMD3((0..<3).map { Int((radius / voxelSize[$0] + 1e-9).rounded(.down)) })
    }

    /// 1 − Ŝ_r: the symbol of δ − s_r, the SHARP high-pass.
    var highPass: [Float] {
        spectrum.withUnsafeBufferPointer { b in
            let p = ReadPointer(b.baseAddress!)
            return VoxelLoop.generate(count: b.count) { 1 - p[$0] }
        }
    }
}

/// Eigenvalues of the 7-point discrete Laplacian with periodic boundaries, on the half spectrum.
///
/// λ(k) = Σ_axes 2(cos(2π m_axis/N_axis) − 1)/Δ_axis² ≤ 0, λ(0) = 0 (QSM.md §3.1, §7).
enum LaplacianEigenvalues {
    /// λ's term along one axis of `n` points spaced `d` mm, for m = 0..<count: 2(cos(2πm/n) − 1)/d².
    static func axis(_ n: Int, count: Int, spacing d: Double) -> [Double] {
        (0..<count).map { m -> Double in 2 * (Double.cos(2 * Double.pi * Double(m) / Double(n)) - 1) / (d * d) }
    }

    /// λ(k) on blocks of spectral columns (`FFT.filter`): Float(λx + λy + λz) in Double.
    struct Columns: Sendable {
        let lx: [Double], ly: [Double], lz: [Double], halfWidth: Int

        init(shape: SIMD3<Int>, voxelSize: SIMD3<Double>) {
            halfWidth = shape.x / 2 + 1
            lx = LaplacianEigenvalues.axis(shape.x, count: halfWidth, spacing: voxelSize.x)
            ly = LaplacianEigenvalues.axis(shape.y, count: shape.y, spacing: voxelSize.y)
            lz = LaplacianEigenvalues.axis(shape.z, count: shape.z, spacing: voxelSize.z)
        }

        /// Divides each coefficient by λ (0 where λ = 0) and multiplies by `scale`.
        func divide(_ columns: SpectralColumns, scale: Float) {
            for q in 0..<columns.count {
                let j = columns.first + q, partial = lx[j % halfWidth] + ly[j / halfWidth]
                var p = columns.values + q
                for z in 0..<columns.depth {
                    let lambda = Float(partial + lz[z])
                    let k = (lambda == 0 ? 0 : 1 / lambda) * scale
                    p.pointee = Complex(p.pointee.real * k, p.pointee.imaginary * k)
                    p += columns.stride
                }
            }
        }
    }
}

/// Erosion of a mask by balls of any radius from one exact Euclidean distance transform, instead of
/// one SMV convolution (an inverse FFT of Ŝ_r·F[M]) per radius.
///
/// erode(M, r) = {x ∈ M : every lattice point x + p with |p|² ≤ r²(1 + 1e-12) lies in M}, the set
/// the SMV methods get from (s_r ⊛ M)(x) > 1 − 0.5/|B_r| (QSM.md §6): the domain's padding keeps
/// every ball around a mask voxel from wrapping, so that convolution counts exactly the ball's
/// points inside M. Equivalently d²(x) > r²(1 + 1e-12), with d² the squared distance (mm) from x to
/// the nearest voxel outside M, voxels beyond the grid included. d² comes from the separable
/// lower-envelope transform of Felzenszwalb P, Huttenlocher D. Distance transforms of sampled
/// functions. Theory of Computing 2012;8:415–428. doi:10.4086/toc.2012.v008a019; each value is
/// evaluated as Σ (k_axis·voxel_axis)² of its nearest outside point, the ball's own formula, so it
/// agrees with the ball test to rounding (far inside the 1e-12 slack), and ties between points at
/// equal distances give equal values whichever point the envelope picks.
enum BallErosion {
    /// For each voxel, the index in `radii` (largest first) of the largest radius whose erosion
    /// contains it (d² > r²(1 + 1e-12)), or `UInt8.max` outside every erosion; and the number of
    /// voxels per index. The last (z) pass of the transform classifies each block of lines as it
    /// finishes, so d² is never stored for the whole volume after it.
    static func largestFittingRadius(_ mask: [Bool], shape n: SIMD3<Int>, voxelSize h: SIMD3<Double>,
                                     radii: [Double]) -> (state: [UInt8], counts: [Int]) {
        precondition(!radii.isEmpty && radii.count < Int(UInt8.max))
        let limits = radii.map { $0 * $0 * (1 + 1e-12) }, radiusCount = radii.count
        let count = n.x * n.y * n.z
        // Outside the mask's bounding box everything is outside every erosion (d² = 0).
        let (low, high) = Morphology.boundingBox(mask, shape: n)
        var state = [UInt8](repeating: .max, count: count)
        guard high.x >= low.x else { return (state, [Int](repeating: 0, count: radiusCount)) }
        let width = 16, xBlocks = (high.x - low.x) / width + 1, blocks = (high.y - low.y + 1) * xBlocks
        var blockCounts = [Int](repeating: 0, count: blocks * radiusCount)
        // d² (mm²) inside the box after the x and y passes.
        var d = [Double](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        d.withUnsafeMutableBufferPointer { db in mask.withUnsafeBufferPointer { mb in
            state.withUnsafeMutableBufferPointer { sb in limits.withUnsafeBufferPointer { lb in blockCounts.withUnsafeMutableBufferPointer { cb in
                let d = SendablePointer(db.baseAddress!), m = ReadPointer(mb.baseAddress!), out = SendablePointer(sb.baseAddress!)
                let lp = ReadPointer(lb.baseAddress!), counts = SendablePointer(cb.baseAddress!), smallest = lb[radiusCount - 1]
                // Along x: distance to the nearest outside voxel of the row (or the grid's edge).
                parallelFor(0..<((high.y - low.y + 1) * (high.z - low.z + 1))) { rows in
                    for row in rows {
                        let y = low.y + row % (high.y - low.y + 1), z = low.z + row / (high.y - low.y + 1)
                        let base = n.x * (y + n.y * z)
                        var last = -1
                        for x in 0..<n.x {
                            if !m[base + x] { last = x; d[base + x] = 0 } else { let t = Double(x - last) * h.x; d[base + x] = t * t }
                        }
                        var next = n.x
                        for x in stride(from: n.x - 1, through: 0, by: -1) {
                            if !m[base + x] { next = x } else { let t = Double(next - x) * h.x; d[base + x] = min(d[base + x], t * t) }
                        }
                    }
                }
                // Along y within each plane (a plane stays in cache), rows and planes outside the box
                // being 0 (outside the mask); then along z for blocks of `width` neighbouring lines
                // gathered together, so each plane contributes whole cache lines.
                parallelFor(low.z..<(high.z + 1)) { planes in
                    let line = Line(n.y)
                    defer { line.deallocate() }
                    for z in planes {
                        for y in 0..<n.y where y < low.y || y > high.y { (d.base + n.x * (y + n.y * z)).update(repeating: 0, count: n.x) }
                        for x in low.x...high.x { line.transform(d.base + x + n.x * n.y * z, stride: n.x, count: n.y, spacing: h.y) }
                    }
                }
                parallelFor(0..<blocks) { range in
                    let line = Line(n.z), block = UnsafeMutablePointer<Double>.allocate(capacity: width * n.z)
                    defer { line.deallocate(); block.deallocate() }
                    for b in range {
                        let y = low.y + b / xBlocks, x0 = low.x + (b % xBlocks) * width
                        let lines = min(width, high.x + 1 - x0), first = x0 + n.x * y
                        for z in 0..<n.z {
                            if z < low.z || z > high.z { (block + z * width).update(repeating: 0, count: lines) }
                            else { (block + z * width).update(from: d.base + first + n.x * n.y * z, count: lines) }
                        }
                        for j in 0..<lines { line.transform(block + j, stride: width, count: n.z, spacing: h.z) }
                        // Classify: the largest radius whose erosion holds the voxel.
                        let blockCounts = counts.base + b * radiusCount
                        for z in low.z...high.z {
                            let values = block + z * width, target = out.base + first + n.x * n.y * z
                            for j in 0..<lines {
                                let distance = values[j]
                                guard distance > smallest else { continue }
                                var k = 0
                                while !(distance > lp[k]) { k += 1 }
                                target[j] = UInt8(k)
                                blockCounts[k] += 1
                            }
                        }
                    }
                }
            } } }
        } }
        let counts = (0..<radiusCount).map { k in (0..<blocks).reduce(0) { $0 + blockCounts[$1 * radiusCount + k] } }
        return (state, counts)
    }

    /// Buffers of the 1-D transform along one line: d(q) ← min_p f(p) + ((q − p)·spacing)² over the
    /// line's points and two outside points (f = 0) just beyond its ends.
    struct Line {
        let values: UnsafeMutablePointer<Double>, sites: UnsafeMutablePointer<Int>, bounds: UnsafeMutablePointer<Double>
        init(_ n: Int) {
            values = .allocate(capacity: n)
            sites = .allocate(capacity: n + 2)
            bounds = .allocate(capacity: n + 3)
        }
        func deallocate() { values.deallocate(); sites.deallocate(); bounds.deallocate() }

        /// Transforms the `n` values at `data[0]`, `data[stride]`, … in place.
        func transform(_ data: UnsafeMutablePointer<Double>, stride: Int, count n: Int, spacing h: Double) {
            var inside = false
            for q in 0..<n { values[q] = data[q * stride]; inside = inside || values[q] > 0 }
            guard inside else { return }
            let h2 = h * h, f = values, v = sites, z = bounds
            func value(_ p: Int) -> Double { p < 0 || p >= n ? 0 : f[p] }
            // Lower envelope of the parabolas f(p) + h²(q − p)², sites left to right.
            var k = 0
            v[0] = -1; z[0] = -.infinity; z[1] = .infinity
            for q in 0...n {
                let fq = value(q) + h2 * Double(q * q)
                var s = 0.0
                while true {
                    let p = v[k]
                    s = (fq - (value(p) + h2 * Double(p * p))) / (2 * h2 * Double(q - p))
                    if s <= z[k] { k -= 1 } else { break }
                }
                k += 1; v[k] = q; z[k] = s; z[k + 1] = .infinity
            }
            k = 0
            for q in 0..<n {
                while z[k + 1] < Double(q) { k += 1 }
                let t = Double(q - v[k]) * h
                data[q * stride] = t * t + value(v[k])
            }
        }
    }
}
