import QSMCore

// Fused parallel passes of TV-ADMM, LSQR, iLSQR and MEDI (issue 6): each writes disjoint voxels
// (per z-plane or per fixed chunk) and adds its sums in a fixed order, so results do not depend on
// the thread count.

/// The TV split of an ADMM on the padded grid: scaled duals u per axis, z = S_t(∇χ + u); v = z − u
/// lives only plane by plane, long enough to form ∇ᵀv for the next χ-step.
/// RTS step 2 keeps its own variant (`ADMMState`: primal residual, no fused ∇ᵀ): one shared kernel
/// with both options measured 5–8 % slower for RTS and ~5 % for TV-ADMM at 256×256×176.
struct TVSplit {
    var ux, uy, uz: [Float]

    init(count: Int) {
        ux = VoxelLoop.zeros(count); uy = VoxelLoop.zeros(count); uz = VoxelLoop.zeros(count)
    }

    /// One pass: returns (‖χ − previous‖², ‖χ‖², Σ(|∂xχ| + |∂yχ| + |∂zχ|) when `measureTV` else 0, 0),
    /// performs the z- and u-steps z = S_t(∇χ + u), u ← ∇χ + u − z, and sets `adjoint` ← ∇ᵀv =
    /// ∇ᵀ(z − u) for the next χ-step (`shrinkPlanes`: v stays in per-thread plane buffers). Sums are
    /// per z-plane, added in plane order: the same for any thread count.
    mutating func shrink(_ grid: InversionGrid, chi: [Float], previous: [Float], threshold t: Float, measureTV: Bool,
                         adjoint: inout [Float]) -> SIMD4<Double> {
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z)
        let hx = Float(1 / grid.voxelSize.x), hy = Float(1 / grid.voxelSize.y), hz = Float(1 / grid.voxelSize.z)
        return adjoint.withUnsafeMutableBufferPointer { ab in chi.withUnsafeBufferPointer { cb in previous.withUnsafeBufferPointer { pb in
            ux.withUnsafeMutableBufferPointer { uxb in uy.withUnsafeMutableBufferPointer { uyb in uz.withUnsafeMutableBufferPointer { uzb in
                    let c = ReadPointer(cb.baseAddress!), old = ReadPointer(pb.baseAddress!)
                    let ux = SendablePointer(uxb.baseAddress!), uy = SendablePointer(uyb.baseAddress!), uz = SendablePointer(uzb.baseAddress!)
                    let lanes = SIMD8<Float>.scalarCount
                    let hx8 = SIMD8<Float>(repeating: hx), hy8 = SIMD8<Float>(repeating: hy), hz8 = SIMD8<Float>(repeating: hz)
                    let t8 = SIMD8<Float>(repeating: t)
                    let o = SendablePointer(ab.baseAddress!)
                    // v of plane z goes to plane-local buffers: index i − z·nx·ny.
                    return shrinkPlanes(shape: grid.shape, steps: SIMD3(hx, hy, hz), adjoint: o) { z, vx, vy, vz in
                        let offset = nx * ny * z
                        // Eight voxels at a time while x + 1 stays in the row, then the row's tail
                        // (periodic x neighbour) one by one; lane sums are Double, added in lane order.
                        var change8 = SIMD8<Double>(), size8 = SIMD8<Double>(), tv8 = SIMD8<Double>()
                        var change = 0.0, size = 0.0, tv = 0.0
                        let zn = z + 1 == nz ? 0 : z + 1
                        for y in 0..<ny {
                            let yn = y + 1 == ny ? 0 : y + 1
                            let row = nx * (y + ny * z), rowY = nx * (yn + ny * z), rowZ = nx * (y + ny * zn)
                            var x = 0
                            while x + lanes < nx {
                                let i = row + x, value = c.vector(at: i)
                                let difference = value - old.vector(at: i)
                                change8 += widened(difference * difference); size8 += widened(value * value)
                                let dx = (c.vector(at: i + 1) - value) * hx8
                                let dy = (c.vector(at: rowY + x) - value) * hy8, dz = (c.vector(at: rowZ + x) - value) * hz8
                                // S_t(a) = a − clamp(a, −t, t) and u ← a − S_t(a) = clamp(a, −t, t).
                                var a = ux.vector(at: i) + dx, u = lanewiseClamp(a, t8)
                                ux.setVector(u, at: i); vx.setVector(a - u - u, at: i - offset)
                                a = uy.vector(at: i) + dy; u = lanewiseClamp(a, t8)
                                uy.setVector(u, at: i); vy.setVector(a - u - u, at: i - offset)
                                a = uz.vector(at: i) + dz; u = lanewiseClamp(a, t8)
                                uz.setVector(u, at: i); vz.setVector(a - u - u, at: i - offset)
                                if measureTV { tv8 += widened(lanewiseAbs(dx) + lanewiseAbs(dy) + lanewiseAbs(dz)) }
                                x += lanes
                            }
                            for x in x..<nx {
                                let i = row + x, value = c[i]
                                let difference = Double(value - old[i])
                                change += difference * difference; size += Double(value) * Double(value)
                                let dx = (c[row + (x + 1 == nx ? 0 : x + 1)] - value) * hx
                                let dy = (c[rowY + x] - value) * hy, dz = (c[rowZ + x] - value) * hz
                                var a = ux[i] + dx, u = min(max(a, -t), t)
                                ux[i] = u; vx[i - offset] = a - u - u
                                a = uy[i] + dy; u = min(max(a, -t), t)
                                uy[i] = u; vy[i - offset] = a - u - u
                                a = uz[i] + dz; u = min(max(a, -t), t)
                                uz[i] = u; vz[i - offset] = a - u - u
                                if measureTV { tv += Double(abs(dx) + abs(dy) + abs(dz)) }
                            }
                        }
                        return SIMD4(change + change8.sum(), size + size8.sum(), tv + tv8.sum(), 0)
                    }
            } } }
        } } }
    }
}

/// Runs `shrinkPlane(z, vx, vy, vz)` for every z-plane in parallel (it returns the plane's sums and
/// writes v of plane z into the three plane buffers, nx·ny each) and, with `adjoint`, sets adjoint ←
/// ∇ᵀv plane by plane while v is in cache, so v never goes to memory. Plane z's ∇ᵀ needs vz of plane
/// z − 1: each thread keeps its last plane's; the first plane of each thread's slab needs the previous
/// slab's last plane, so its v and that vz are kept and its ∇ᵀ is formed after the pass (the same
/// arithmetic). Sums are added in plane order: the same for any thread count.
func shrinkPlanes(shape: SIMD3<Int>, steps: SIMD3<Float>, adjoint o: SendablePointer<Float>?,
                  _ shrinkPlane: @Sendable (Int, SendablePointer<Float>, SendablePointer<Float>, SendablePointer<Float>) -> SIMD4<Double>)
    -> SIMD4<Double> {
    let (nx, ny, nz) = (shape.x, shape.y, shape.z), planeSize = nx * ny
    var partial = [SIMD4<Double>](repeating: .zero, count: nz)
    // Per z: the kept (vx, vy, vz) of a slab's first plane, and the kept vz of a slab's last plane.
    let firstKept = UnsafeMutablePointer<UnsafeMutablePointer<Float>?>.allocate(capacity: nz)
    let lastKept = UnsafeMutablePointer<UnsafeMutablePointer<Float>?>.allocate(capacity: nz)
    firstKept.initialize(repeating: nil, count: nz); lastKept.initialize(repeating: nil, count: nz)
    defer {
        for z in 0..<nz { firstKept[z]?.deallocate(); lastKept[z]?.deallocate() }
        firstKept.deallocate(); lastKept.deallocate()
    }
    let first = SendablePointer(firstKept), last = SendablePointer(lastKept)
    partial.withUnsafeMutableBufferPointer { sb in
        let sums = SendablePointer(sb.baseAddress!)
        parallelFor(0..<nz) { zs in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 4 * planeSize)
            defer { buffer.deallocate() }
            var vx = buffer, vy = buffer + planeSize, vz = buffer + 2 * planeSize, below = buffer + 3 * planeSize
            for z in zs {
                sums[z] = shrinkPlane(z, SendablePointer(vx), SendablePointer(vy), SendablePointer(vz))
                guard let o else { continue }
                if z == zs.lowerBound {
                    let kept = UnsafeMutablePointer<Float>.allocate(capacity: 3 * planeSize)
                    kept.update(from: vx, count: planeSize)
                    (kept + planeSize).update(from: vy, count: planeSize)
                    (kept + 2 * planeSize).update(from: vz, count: planeSize)
                    first[z] = kept
                } else {
                    gradientAdjointPlane(nx: nx, ny: ny, steps: steps, vx, vy, vz, below: below, into: o.base + z * planeSize)
                }
                if z == zs.upperBound - 1 {
                    let kept = UnsafeMutablePointer<Float>.allocate(capacity: planeSize)
                    kept.update(from: vz, count: planeSize)
                    last[z] = kept
                }
                swap(&vz, &below)
            }
        }
    }
    if let o {
        let starts = (0..<nz).filter { firstKept[$0] != nil }
        parallelFor(0..<starts.count) { r in
            for k in r {
                let z = starts[k], kept = first[z]!, below = last[z == 0 ? nz - 1 : z - 1]!
                gradientAdjointPlane(nx: nx, ny: ny, steps: steps, kept, kept + planeSize, kept + 2 * planeSize, below: below,
                                     into: o.base + z * planeSize)
            }
        }
    }
    return partial.reduce(.zero, +)
}

/// ∇ᵀv on one z-plane (backward periodic differences, `steps` = 1/voxel size) from plane buffers: v of
/// the plane and vz of the plane below; the arithmetic of `InversionGrid.gradientAdjoint`, eight
/// voxels at a time where x − 1 stays in the row.
@inline(__always) func gradientAdjointPlane(nx: Int, ny: Int, steps: SIMD3<Float>, _ vx: UnsafeMutablePointer<Float>,
                                            _ vy: UnsafeMutablePointer<Float>, _ vz: UnsafeMutablePointer<Float>,
                                            below: UnsafeMutablePointer<Float>, into o: UnsafeMutablePointer<Float>) {
    let (hx, hy, hz) = (steps.x, steps.y, steps.z)
    let hx8 = SIMD8<Float>(repeating: hx), hy8 = SIMD8<Float>(repeating: hy), hz8 = SIMD8<Float>(repeating: hz)
    @inline(__always) func load(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    for y in 0..<ny {
        let row = nx * y, rowY = nx * (y == 0 ? ny - 1 : y - 1)
        o[row] = (vx[row + nx - 1] - vx[row]) * hx + (vy[rowY] - vy[row]) * hy + (below[row] - vz[row]) * hz
        var x = 1
        while x + 8 <= nx {
            let i = row + x
            let a = (load(vx, i - 1) - load(vx, i)) * hx8, b = (load(vy, rowY + x) - load(vy, i)) * hy8
            UnsafeMutableRawPointer(o + i).storeBytes(of: a + b + (load(below, i) - load(vz, i)) * hz8, as: SIMD8<Float>.self)
            x += 8
        }
        for x in x..<nx {
            let i = row + x
            o[i] = (vx[i - 1] - vx[i]) * hx + (vy[rowY + x] - vy[i]) * hy + (below[i] - vz[i]) * hz
        }
    }
}

/// The lanes of `v` as Doubles (exact), inlined: the generic `SIMD8<Double>(v)` is a call per vector.
@inline(__always) func widened(_ v: SIMD8<Float>) -> SIMD8<Double> {
    SIMD8<Double>(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]),
                  Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7]))
}

/// |a| lane-wise, inlined.
@inline(__always) func lanewiseAbs(_ a: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: -a, where: a .< 0)
    return r
}

/// Parallel elementwise passes over Float vectors with fixed-chunk Double sums.
enum VectorPass {
    /// a[i] ← a[i]·factor.
    static func scale(_ a: inout [Float], by factor: Float) {
        a.withUnsafeMutableBufferPointer { ab in
            let p = SendablePointer(ab.baseAddress!)
            parallelFor(0..<ab.count) { r in for i in r { p[i] *= factor } }
        }
    }

    /// a[i] ← a[i] + c.
    static func add(_ a: inout [Float], _ c: Float) {
        a.withUnsafeMutableBufferPointer { ab in
            let p = SendablePointer(ab.baseAddress!)
            parallelFor(0..<ab.count) { r in for i in r { p[i] += c } }
        }
    }

    /// a[i] ← a[i]·b[i].
    static func multiply(_ a: inout [Float], by b: [Float]) {
        precondition(a.count == b.count)
        a.withUnsafeMutableBufferPointer { ab in b.withUnsafeBufferPointer { bb in
            let x = SendablePointer(ab.baseAddress!), y = ReadPointer(bb.baseAddress!)
            parallelFor(0..<ab.count) { r in for i in r { x[i] *= y[i] } }
        } }
    }

    /// a[i] ← factor·b[i] − minus·a[i]; returns ‖a‖² (fixed chunks).
    static func combine(_ a: inout [Float], from b: [Float], factor: Float, minus: Float) -> Double {
        precondition(a.count == b.count)
        return a.withUnsafeMutableBufferPointer { ab in b.withUnsafeBufferPointer { bb in
            let x = SendablePointer(ab.baseAddress!), y = ReadPointer(bb.baseAddress!)
            return chunkedSums(count: ab.count) { r in
                var s = 0.0
                for i in r { let v = factor * y[i] - minus * x[i]; x[i] = v; s += Double(v) * Double(v) }
                return SIMD4(s, 0, 0, 0)
            }[0]
        } }
    }
}

extension InversionGrid {
    /// (ox, oy, oz) ← (wx·∂x, wy·∂y, wz·∂z) of `values` (forward periodic differences, 1/mm) in one
    /// pass; the outputs may be three parts of one array.
    func weightedGradient(_ values: [Float], weights wx: [Float], _ wy: [Float], _ wz: [Float],
                          into ox: SendablePointer<Float>, _ oy: SendablePointer<Float>, _ oz: SendablePointer<Float>) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        let (vhx, vhy, vhz) = (SIMD8(repeating: hx), SIMD8(repeating: hy), SIMD8(repeating: hz))
        values.withUnsafeBufferPointer { vb in
            wx.withUnsafeBufferPointer { xb in wy.withUnsafeBufferPointer { yb in wz.withUnsafeBufferPointer { zb in
                let c = ReadPointer(vb.baseAddress!)
                let ax = ReadPointer(xb.baseAddress!), ay = ReadPointer(yb.baseAddress!), az = ReadPointer(zb.baseAddress!)
                parallelFor(0..<nz) { zs in
                    for z in zs {
                        let zn = z + 1 == nz ? 0 : z + 1
                        for y in 0..<ny {
                            let yn = y + 1 == ny ? 0 : y + 1
                            let row = nx * (y + ny * z), rowY = nx * (yn + ny * z), rowZ = nx * (y + ny * zn)
                            // Periodic x neighbour as an argument: no wrap select in the interior loop.
                            @inline(__always) func at(_ x: Int, _ next: Int) {
                                let i = row + x, value = c[i]
                                ox[i] = ax[i] * ((c[row + next] - value) * hx)
                                oy[i] = ay[i] * ((c[rowY + x] - value) * hy)
                                oz[i] = az[i] * ((c[rowZ + x] - value) * hz)
                            }
                            // 8 lanes at a time (the same operations lane by lane), then the rest.
                            var x = 0
                            while x + 9 <= nx {
                                let i = row + x, value = c.vector(at: i)
                                ox.setVector(ax.vector(at: i) * ((c.vector(at: i + 1) - value) * vhx), at: i)
                                oy.setVector(ay.vector(at: i) * ((c.vector(at: rowY + x) - value) * vhy), at: i)
                                oz.setVector(az.vector(at: i) * ((c.vector(at: rowZ + x) - value) * vhz), at: i)
                                x += 8
                            }
                            while x < nx - 1 { at(x, x + 1); x += 1 }
                            at(nx - 1, 0)
                        }
                    }
                }
            } } }
        }
    }

    /// out ← ∇ᵀ(wx·gx, wy·gy, wz·gz) (the adjoint of `gradient`, weights applied on the fly) in one pass.
    func weightedGradientAdjoint(_ gx: ReadPointer<Float>, _ gy: ReadPointer<Float>, _ gz: ReadPointer<Float>,
                                 weights wx: [Float], _ wy: [Float], _ wz: [Float], into out: inout [Float]) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        let (vhx, vhy, vhz) = (SIMD8(repeating: hx), SIMD8(repeating: hy), SIMD8(repeating: hz))
        out.withUnsafeMutableBufferPointer { ob in
            wx.withUnsafeBufferPointer { xb in wy.withUnsafeBufferPointer { yb in wz.withUnsafeBufferPointer { zb in
                let o = SendablePointer(ob.baseAddress!)
                let ax = ReadPointer(xb.baseAddress!), ay = ReadPointer(yb.baseAddress!), az = ReadPointer(zb.baseAddress!)
                parallelFor(0..<nz) { zs in
                    for z in zs {
                        let zp = z == 0 ? nz - 1 : z - 1
                        for y in 0..<ny {
                            let yp = y == 0 ? ny - 1 : y - 1
                            let row = nx * (y + ny * z), rowY = nx * (yp + ny * z), rowZ = nx * (y + ny * zp)
                            // Periodic x neighbour as an argument: no wrap select in the interior loop.
                            @inline(__always) func at(_ x: Int, _ previous: Int) {
                                let i = row + x, xm = row + previous
                                let px = ax[i] * gx[i], py = ay[i] * gy[i], pz = az[i] * gz[i]
                                o[i] = (ax[xm] * gx[xm] - px) * hx + (ay[rowY + x] * gy[rowY + x] - py) * hy
                                    + (az[rowZ + x] * gz[rowZ + x] - pz) * hz
                            }
                            at(0, nx - 1)
                            // 8 lanes at a time (the same operations lane by lane), then the rest.
                            var x = 1
                            while x + 8 <= nx {
                                let i = row + x
                                let px = ax.vector(at: i) * gx.vector(at: i), py = ay.vector(at: i) * gy.vector(at: i)
                                let pz = az.vector(at: i) * gz.vector(at: i)
                                let value = (ax.vector(at: i - 1) * gx.vector(at: i - 1) - px) * vhx
                                    + (ay.vector(at: rowY + x) * gy.vector(at: rowY + x) - py) * vhy
                                    + (az.vector(at: rowZ + x) * gz.vector(at: rowZ + x) - pz) * vhz
                                o.setVector(value, at: i)
                                x += 8
                            }
                            while x < nx { at(x, x - 1); x += 1 }
                        }
                    }
                }
            } } }
        }
    }
}

extension InversionGrid {
    /// out ← ∇ᵀ(V∇x) with V = (vx, vy, vz) per component, in one pass without gradient buffers: each
    /// weighted difference is formed where it is needed (twice per voxel), with the arithmetic of
    /// `gradient`, the weighting and `gradientAdjoint` in that order.
    func weightedLaplacian(_ values: [Float], weights vx: [Float], _ vy: [Float], _ vz: [Float], into out: inout [Float]) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        let (vhx, vhy, vhz) = (SIMD8(repeating: hx), SIMD8(repeating: hy), SIMD8(repeating: hz))
        out.withUnsafeMutableBufferPointer { ob in values.withUnsafeBufferPointer { cb in
            vx.withUnsafeBufferPointer { xb in vy.withUnsafeBufferPointer { yb in vz.withUnsafeBufferPointer { zb in
                let o = SendablePointer(ob.baseAddress!), c = ReadPointer(cb.baseAddress!)
                let ax = ReadPointer(xb.baseAddress!), ay = ReadPointer(yb.baseAddress!), az = ReadPointer(zb.baseAddress!)
                parallelFor(0..<nz) { zs in
                    for z in zs {
                        let zn = z + 1 == nz ? 0 : z + 1, zp = z == 0 ? nz - 1 : z - 1
                        for y in 0..<ny {
                            let yn = y + 1 == ny ? 0 : y + 1, yp = y == 0 ? ny - 1 : y - 1
                            let row = nx * (y + ny * z)
                            let rowYn = nx * (yn + ny * z), rowYp = nx * (yp + ny * z)
                            let rowZn = nx * (y + ny * zn), rowZp = nx * (y + ny * zp)
                            // Periodic x neighbours as arguments: the interior loop has no wrap
                            // selects and vectorises; the two ends are done apart.
                            @inline(__always) func at(_ x: Int, _ next: Int, _ previous: Int) {
                                let i = row + x, value = c[i]
                                let xn = row + next, xm = row + previous
                                let gx = (c[xn] - value) * hx * ax[i], gxm = (value - c[xm]) * hx * ax[xm]
                                let gy = (c[rowYn + x] - value) * hy * ay[i], gym = (value - c[rowYp + x]) * hy * ay[rowYp + x]
                                let gz = (c[rowZn + x] - value) * hz * az[i], gzm = (value - c[rowZp + x]) * hz * az[rowZp + x]
                                o[i] = (gxm - gx) * hx + (gym - gy) * hy + (gzm - gz) * hz
                            }
                            at(0, nx > 1 ? 1 : 0, nx - 1)
                            // 8 lanes at a time (the same operations lane by lane), then the rest.
                            var x = 1
                            while x + 8 < nx {
                                let i = row + x, value = c.vector(at: i)
                                let gx = (c.vector(at: i + 1) - value) * vhx * ax.vector(at: i)
                                let gxm = (value - c.vector(at: i - 1)) * vhx * ax.vector(at: i - 1)
                                let gy = (c.vector(at: rowYn + x) - value) * vhy * ay.vector(at: i)
                                let gym = (value - c.vector(at: rowYp + x)) * vhy * ay.vector(at: rowYp + x)
                                let gz = (c.vector(at: rowZn + x) - value) * vhz * az.vector(at: i)
                                let gzm = (value - c.vector(at: rowZp + x)) * vhz * az.vector(at: rowZp + x)
                                o.setVector((gxm - gx) * vhx + (gym - gy) * vhy + (gzm - gz) * vhz, at: i)
                                x += 8
                            }
                            while x < nx - 1 { at(x, x + 1, x - 1); x += 1 }
                            if nx > 1 { at(nx - 1, 0, nx - 2) }
                        }
                    }
                }
            } } }
        } }
    }
}

extension InversionGrid {
    /// u ← factor·(wx·∂x, wy·∂y, wz·∂z)(values) − minus·u on the stacked (x, y, z) vector `u` (3·count
    /// entries), returning ‖u‖² (Double, per z-plane sums added in plane order) — LSQR's u-update
    /// fused with the weighted gradient.
    func weightedGradientUpdate(_ values: [Float], weights wx: [Float], _ wy: [Float], _ wz: [Float],
                                stacked u: SendablePointer<Float>, factor: Float, minus: Float) -> Double {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z), n = count
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        let (vhx, vhy, vhz) = (SIMD8(repeating: hx), SIMD8(repeating: hy), SIMD8(repeating: hz))
        let factor8 = SIMD8(repeating: factor), minus8 = SIMD8(repeating: minus)
        return values.withUnsafeBufferPointer { vb in
            wx.withUnsafeBufferPointer { xb in wy.withUnsafeBufferPointer { yb in wz.withUnsafeBufferPointer { zb in
                let c = ReadPointer(vb.baseAddress!)
                let ax = ReadPointer(xb.baseAddress!), ay = ReadPointer(yb.baseAddress!), az = ReadPointer(zb.baseAddress!)
                return planeSums(count: nz) { z in
                    var sum = 0.0
                    let zn = z + 1 == nz ? 0 : z + 1
                    for y in 0..<ny {
                        let yn = y + 1 == ny ? 0 : y + 1
                        let row = nx * (y + ny * z), rowY = nx * (yn + ny * z), rowZ = nx * (y + ny * zn)
                        // Periodic x neighbour as an argument: no wrap select in the interior loop.
                        @inline(__always) func at(_ x: Int, _ next: Int) {
                            let i = row + x, value = c[i]
                            let gx = factor * (ax[i] * ((c[row + next] - value) * hx)) - minus * u[i]
                            let gy = factor * (ay[i] * ((c[rowY + x] - value) * hy)) - minus * u[n + i]
                            let gz = factor * (az[i] * ((c[rowZ + x] - value) * hz)) - minus * u[2 * n + i]
                            u[i] = gx; u[n + i] = gy; u[2 * n + i] = gz
                            sum += Double(gx) * Double(gx) + Double(gy) * Double(gy) + Double(gz) * Double(gz)
                        }
                        // 8 lanes at a time (the same operations lane by lane; the sum taken in
                        // lane order, as the scalar loop would), then the rest.
                        var x = 0
                        while x + 9 <= nx {
                            let i = row + x, value = c.vector(at: i)
                            let gx = factor8 * (ax.vector(at: i) * ((c.vector(at: i + 1) - value) * vhx)) - minus8 * u.vector(at: i)
                            let gy = factor8 * (ay.vector(at: i) * ((c.vector(at: rowY + x) - value) * vhy)) - minus8 * u.vector(at: n + i)
                            let gz = factor8 * (az.vector(at: i) * ((c.vector(at: rowZ + x) - value) * vhz)) - minus8 * u.vector(at: 2 * n + i)
                            u.setVector(gx, at: i); u.setVector(gy, at: n + i); u.setVector(gz, at: 2 * n + i)
                            for k in 0..<8 {
                                sum += Double(gx[k]) * Double(gx[k]) + Double(gy[k]) * Double(gy[k]) + Double(gz[k]) * Double(gz[k])
                            }
                            x += 8
                        }
                        while x < nx - 1 { at(x, x + 1); x += 1 }
                        at(nx - 1, 0)
                    }
                    return SIMD4(sum, 0, 0, 0)
                }[0]
            } } }
        }
    }
}
