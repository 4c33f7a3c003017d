// Fused separable filtering for metrics that only need a reduction of filtered volumes (SSIM,
// XSIM). Goals, in order: 1. the boundary rules of the reference implementations, in Double;
// 2. results independent of the thread count (partial sums per run added in a fixed order);
// 3. speed: x and y passes run on one z-slice at a time while it sits in cache, the z pass runs
// down columns of voxels fused with the per-voxel formula and the reduction, and only a rolling
// window of filtered slices is stored (no large allocations, no page-fault storms).

/// One x–y filtered plane term: `x` then `y` kernel applied to source `source`.
struct PlaneTerm {
    var source: Int
    var x: [Double]
    var y: [Double]
}

/// One z term of an output: `z` kernel applied to plane `plane`.
struct OutputTerm {
    var plane: Int
    var z: [Double]
}

/// Separable filters fused with a per-slice reduction.
///
/// Stage 1 fills each source slice with `fillSource`, and stores plane p = Σ over `planes[p]` of
/// y(x(source)) for a window of slices. Stage 2 forms output m = Σ over `outputs[m]` of z(plane) for runs of voxels
/// (`count` voxels from slice index `offset` in slice `z`; `outputs[m][k]` is voxel offset + k)
/// and hands them to `reduce`, whose results are summed in a fixed order.
struct FusedSeparableFilter {
    var shape: SIMD3<Int>
    var boundary: FilterBoundary
    var sourceCount: Int
    var planes: [[PlaneTerm]]
    var outputs: [[OutputTerm]]

    /// Output slices per slab; the stored planes hold one slab plus the z-kernel halo.
    static let slab = 16

    func run(
        fillSource: @Sendable (_ source: Int, _ z: Int, _ slice: UnsafeMutablePointer<Double>) -> Void,
        reduce: @Sendable (_ z: Int, _ offset: Int, _ count: Int, _ outputs: [UnsafeMutablePointer<Double>]) -> SIMD2<Double>
    ) -> SIMD2<Double> {
        let nx = shape.x, ny = shape.y, nz = shape.z, sliceCount = nx * ny
        guard sliceCount * nz > 0 else { return .zero }
        // Boundary tables per term, looked up by position (no hashing in the loops).
        let xTables = planes.map { $0.map { TapTable(length: nx, weights: $0.x, boundary: boundary) } }
        let yTables = planes.map { $0.map { TapTable(length: ny, weights: $0.y, boundary: boundary) } }
        let zTables = outputs.map { $0.map { TapTable(length: nz, weights: $0.z, boundary: boundary) } }
        let planes = self.planes, outputs = self.outputs, sourceCount = self.sourceCount

        // Stored planes form a rolling window of input slices [windowLow, windowHigh): slice z of
        // plane p lives at storage + (p·capacity + z − windowLow)·sliceCount. A slab of outputs
        // needs the slices its z taps reach; the overlap with the previous window is moved to the
        // front and only new slices are filtered, so every slice goes through stage 1 once.
        let slabs = stride(from: 0, to: nz, by: Self.slab).map { $0..<min($0 + Self.slab, nz) }
        let needed = slabs.map { slab -> ClosedRange<Int> in
            var low = nz, high = -1
            for z in slab { for table in zTables.joined() { for (source, _) in table.entries[z] {
                low = min(low, source); high = max(high, source)
            } } }
            return high >= low ? low...high : slab.lowerBound...slab.lowerBound
        }
        let capacity = needed.map(\.count).max()!
        let storage = SendablePointer(UnsafeMutablePointer<Double>.allocate(capacity: planes.count * capacity * sliceCount))
        defer { storage.base.deallocate() }
        var windowLow = 0, windowHigh = 0

        let tile = 512
        let tiles = (sliceCount + tile - 1) / tile
        var partials = [SIMD2<Double>](repeating: .zero, count: tiles * nz)
        for (slab, range) in zip(slabs, needed) {
            // Keep the overlap of the old window with the new range.
            var firstNew = range.lowerBound
            if range.lowerBound >= windowLow && range.lowerBound < windowHigh {
                let keep = windowHigh - range.lowerBound, shift = range.lowerBound - windowLow
                if shift > 0 {
                    for p in 0..<planes.count {
                        let base = storage.base + p * capacity * sliceCount
                        base.update(from: base + shift * sliceCount, count: keep * sliceCount)
                    }
                }
                firstNew = windowHigh
            }
            windowLow = range.lowerBound
            windowHigh = range.upperBound + 1

            // Stage 1: x and y passes of the new slices.
            let low = windowLow
            parallelFor(firstNew..<windowHigh) { zRange in
                let sources = UnsafeMutablePointer<Double>.allocate(capacity: sourceCount * sliceCount)
                let xFiltered = UnsafeMutablePointer<Double>.allocate(capacity: sliceCount)
                defer { sources.deallocate(); xFiltered.deallocate() }
                for z in zRange {
                    for s in 0..<sourceCount { fillSource(s, z, sources + s * sliceCount) }
                    for (p, terms) in planes.enumerated() {
                        let plane = storage.base + (p * capacity + z - low) * sliceCount
                        plane.update(repeating: 0, count: sliceCount)
                        for (t, term) in terms.enumerated() {
                            correlateRows(sources + term.source * sliceCount, xFiltered, rowLength: nx, rows: ny,
                                          table: xTables[p][t])
                            accumulateStrided(xFiltered, into: plane, length: ny, inner: nx, table: yTables[p][t])
                        }
                    }
                }
            }

            // Stage 2: z pass down columns of `tile` voxels (the taps of one column stay in cache
            // while z slides), then the reduction; partial sums stored per (tile, z).
            partials.withUnsafeMutableBufferPointer { buffer in
                let results = SendablePointer(buffer.baseAddress!)
                parallelFor(0..<tiles) { tileRange in
                    let slices = (0..<outputs.count).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: tile) }
                    defer { slices.forEach { $0.deallocate() } }
                    for t in tileRange {
                        let offset = t * tile, count = min(tile, sliceCount - offset)
                        for z in slab {
                            for (m, terms) in outputs.enumerated() {
                                let out = slices[m]
                                out.update(repeating: 0, count: count)
                                var taps = 0
                                for table in zTables[m] { taps += table.entries[z].count }
                                withTapBuffers(taps) { pointers, weights in
                                    var k = 0
                                    for (t, term) in terms.enumerated() {
                                        let plane = storage.base + term.plane * capacity * sliceCount + offset
                                        for (source, w) in zTables[m][t].entries[z] {
                                            pointers[k] = UnsafePointer(plane + (source - low) * sliceCount)
                                            weights[k] = w
                                            k += 1
                                        }
                                    }
                                    accumulate(pointers, weights, taps: taps, count: count, into: out)
                                }
                            }
                            results[t * nz + z] = reduce(z, offset, count, slices)
                        }
                    }
                }
            }
        }
        return partials.reduce(.zero, +)
    }
}

/// dst[j] += Σₜ weights[t]·sources[t][j] for j in 0..<count. Four-wide SIMD accumulators stay in
/// registers across all taps, so each tap costs one load instead of a load, a store and a reload.
@inline(__always)
private func accumulate(_ sources: UnsafeMutableBufferPointer<UnsafePointer<Double>>,
                        _ weights: UnsafeMutableBufferPointer<Double>, taps: Int, count: Int,
                        into dst: UnsafeMutablePointer<Double>) {
    var j = 0
    // Sixteen outputs at a time: four independent accumulators hide the add latency.
    while j + 16 <= count {
        var s0 = SIMD4<Double>(repeating: 0), s1 = s0, s2 = s0, s3 = s0
        for t in 0..<taps {
            let w = weights[t], p = UnsafeRawPointer(sources[t] + j)
            s0 += w * p.loadUnaligned(as: SIMD4<Double>.self)
            s1 += w * p.loadUnaligned(fromByteOffset: 32, as: SIMD4<Double>.self)
            s2 += w * p.loadUnaligned(fromByteOffset: 64, as: SIMD4<Double>.self)
            s3 += w * p.loadUnaligned(fromByteOffset: 96, as: SIMD4<Double>.self)
        }
        let d = UnsafeMutableRawPointer(dst + j)
        d.storeBytes(of: d.loadUnaligned(as: SIMD4<Double>.self) + s0, as: SIMD4<Double>.self)
        d.storeBytes(of: d.loadUnaligned(fromByteOffset: 32, as: SIMD4<Double>.self) + s1, toByteOffset: 32, as: SIMD4<Double>.self)
        d.storeBytes(of: d.loadUnaligned(fromByteOffset: 64, as: SIMD4<Double>.self) + s2, toByteOffset: 64, as: SIMD4<Double>.self)
        d.storeBytes(of: d.loadUnaligned(fromByteOffset: 96, as: SIMD4<Double>.self) + s3, toByteOffset: 96, as: SIMD4<Double>.self)
        j += 16
    }
    while j + 4 <= count {
        var sum = SIMD4<Double>(repeating: 0)
        for t in 0..<taps {
            sum += weights[t] * UnsafeRawPointer(sources[t] + j).loadUnaligned(as: SIMD4<Double>.self)
        }
        let previous = UnsafeRawPointer(dst + j).loadUnaligned(as: SIMD4<Double>.self)
        UnsafeMutableRawPointer(dst + j).storeBytes(of: previous + sum, as: SIMD4<Double>.self)
        j += 4
    }
    while j < count {
        var sum = 0.0
        for t in 0..<taps { sum += weights[t] * sources[t][j] }
        dst[j] += sum
        j += 1
    }
}

/// Runs `body` with scratch buffers for up to `capacity` (pointer, weight) taps on the stack.
@inline(__always)
private func withTapBuffers<R>(_ capacity: Int, _ body: (UnsafeMutableBufferPointer<UnsafePointer<Double>>,
                                                          UnsafeMutableBufferPointer<Double>) -> R) -> R {
    withUnsafeTemporaryAllocation(of: UnsafePointer<Double>.self, capacity: max(capacity, 1)) { pointers in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(capacity, 1)) { weights in
            body(pointers, weights)
        }
    }
}

/// x pass of `rows` contiguous rows: `output` = correlation of `input` with the table's kernel.
private func correlateRows(_ input: UnsafeMutablePointer<Double>, _ output: UnsafeMutablePointer<Double>,
                           rowLength n: Int, rows: Int, table: TapTable) {
    let radius = table.weights.count / 2
    let interiorLow = min(radius, n), interiorHigh = max(interiorLow, n - radius)
    withTapBuffers(table.weights.count) { pointers, weights in
        for row in 0..<rows {
            let src = input + row * n, dst = output + row * n
            // Interior positions: every tap in range.
            var taps = 0
            for (k, w) in table.weights.enumerated() where w != 0 {
                pointers[taps] = UnsafePointer(src + interiorLow + k - radius)
                weights[taps] = w
                taps += 1
            }
            for i in interiorLow..<interiorHigh { dst[i] = 0 }
            accumulate(pointers, weights, taps: taps, count: interiorHigh - interiorLow, into: dst + interiorLow)
            // Border positions through the boundary table.
            func border(_ i: Int) {
                var sum = 0.0
                for (source, w) in table.entries[i] { sum += w * src[source] }
                dst[i] = sum
            }
            for i in 0..<interiorLow { border(i) }
            for i in interiorHigh..<n { border(i) }
        }
    }
}

/// y pass on one slice, added into `output`: lines of `inner` contiguous values.
private func accumulateStrided(_ input: UnsafeMutablePointer<Double>, into output: UnsafeMutablePointer<Double>,
                               length n: Int, inner: Int, table: TapTable) {
    withTapBuffers(table.weights.count) { pointers, weights in
        for i in 0..<n {
            var taps = 0
            for (source, w) in table.entries[i] {
                pointers[taps] = UnsafePointer(input + source * inner)
                weights[taps] = w
                taps += 1
            }
            accumulate(pointers, weights, taps: taps, count: inner, into: output + i * inner)
        }
    }
}
