import CFFTW
import ComplexModule

/// A block of half-spectrum columns (fixed kx, ky; every kz), in cache during a fused transform.
///
/// `values[z * stride + q]` is the coefficient of column `first + q` at k-index z; a column
/// j = kx + (nx/2+1)·ky, so its half-spectrum index is `first + q + planeCount * z`.
public struct SpectralColumns {
    /// The block's coefficients, z-major (`values[z * stride + q]`).
    public let values: UnsafeMutablePointer<Complex<Float>>
    /// First column of the block.
    public let first: Int
    /// Columns in the block.
    public let count: Int
    /// Distance between successive z of one column in `values`.
    public let stride: Int
    /// Columns per x–y plane of the half spectrum, (nx/2+1)·ny.
    public let planeCount: Int
    /// Length of a column (nz).
    public let depth: Int

    /// Half-spectrum index of column `q` at k-index `z`.
    @inlinable public func index(_ q: Int, _ z: Int) -> Int { first + q + planeCount * z }
}

/// The x–y planes (z indices) of a fused transform that matter: a forward transform takes the
/// others as zero and does not load them; an inverse transform neither computes nor stores them.
///
/// A masked volume or a small kernel occupies a fraction of the planes; the plane transforms
/// (two of the three axes) of the rest are skipped, and the results are the full transform's.
public struct PlaneSupport: Sendable {
    /// Whether each plane is in the support.
    let flags: [Bool]
    /// The planes in the support, ascending.
    public let planes: [Int]

    /// The planes of `ranges` (clamped to 0..<depth) in a volume `depth` planes deep.
    public init(depth: Int, ranges: [Range<Int>]) {
        var flags = [Bool](repeating: false, count: depth)
        for r in ranges { for z in max(0, r.lowerBound)..<min(depth, max(r.upperBound, 0)) { flags[z] = true } }
        self.flags = flags
        planes = flags.indices.filter { flags[$0] }
    }

    /// The planes of a volume (x fastest, planes of `planeSize` voxels) holding a true voxel of `mask`.
    public init(occupiedBy mask: UnsafeBufferPointer<Bool>, planeSize: Int) {
        precondition(planeSize > 0 && mask.count % planeSize == 0)
        let base = SendablePointer(UnsafeMutableRawPointer(mutating: mask.baseAddress!).assumingMemoryBound(to: UInt8.self))
        self.init(depth: mask.count / planeSize) { z in
            // Eight flags (bytes) at a time; a plane with a voxel usually stops early.
            let plane = UnsafeRawPointer(base.base + z * planeSize)
            var i = 0
            while i + 8 <= planeSize { if plane.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return true }; i += 8 }
            while i < planeSize { if plane.load(fromByteOffset: i, as: UInt8.self) != 0 { return true }; i += 1 }
            return false
        }
    }

    /// The planes of a volume (x fastest, planes of `planeSize` values) holding a nonzero value.
    public init(nonzeroIn values: UnsafeBufferPointer<Float>, planeSize: Int) {
        precondition(planeSize > 0 && values.count % planeSize == 0)
        let base = SendablePointer(UnsafeMutablePointer(mutating: values.baseAddress!))
        self.init(depth: values.count / planeSize) { z in
            let plane = base.base + z * planeSize
            for i in 0..<planeSize where plane[i] != 0 { return true }
            return false
        }
    }

    /// The planes z in 0..<depth for which `occupied(z)` holds, tested in parallel.
    private init(depth: Int, occupied: @Sendable (Int) -> Bool) {
        var flags = [Bool](repeating: false, count: depth)
        flags.withUnsafeMutableBufferPointer { fb in
            let f = SendablePointer(fb.baseAddress!)
            parallelFor(0..<depth) { zs in for z in zs { f[z] = occupied(z) } }
        }
        self.flags = flags
        planes = flags.indices.filter { flags[$0] }
    }

    /// This support placed at plane `offset` of a volume `depth` planes deep (padding).
    public func embedded(at offset: Int, depth: Int) -> PlaneSupport {
        PlaneSupport(depth: depth, ranges: planes.map { ($0 + offset)..<($0 + offset + 1) })
    }

    /// Zeroes the planes of `volume` that the support leaves out: what a store restricted to it did
    /// not write. The volume has `depth` planes of `planeSize` values, its plane z being the
    /// support's plane z + `offset` (a volume on the original grid inside a padded transform).
    public func zeroPlanesOutside(_ volume: UnsafeMutablePointer<Float>, planeSize: Int, depth: Int, offset: Int = 0) {
        for z in 0..<depth where !contains(z + offset) { (volume + z * planeSize).update(repeating: 0, count: planeSize) }
    }

    /// Planes in the support.
    public var count: Int { planes.count }
    /// Whether plane z is in the support.
    public func contains(_ z: Int) -> Bool { z >= 0 && z < flags.count && flags[z] }
}

/// Fused transforms: the 3-D FFT split into 2-D transforms of x–y planes and batched 1-D
/// transforms along z, so elementwise work happens while the data are in cache.
///
/// A filter F⁻¹[K·F[x]] otherwise streams the volume through memory for the input copy, the two
/// transforms (several passes each), the product and the output pass; fused it makes three sweeps.
/// Each call counts as the 3-D transforms it replaces (`FFTStatistics`), of this shape.
extension FFT where T == Float {
    /// out ← F⁻¹[P(F[x])] in one fused sweep; `load(z, plane)` writes input plane z (nx·ny, x
    /// fastest), `product` transforms each block of spectral columns in place, `store(z, plane)`
    /// reads output plane z. `spectrum` (half-spectrum size) is scratch. Normalised by 1/N unless
    /// `normalized` is false. Input planes outside `inputPlanes` are zero; output planes outside
    /// `outputPlanes` are not computed (nil: every plane). Counts two transforms.
    public func filter(
        spectrum: UnsafeMutableBufferPointer<Complex<Float>>, normalized: Bool = true,
        inputPlanes: PlaneSupport? = nil, outputPlanes: PlaneSupport? = nil,
        load: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void,
        product: @Sendable (SpectralColumns) -> Void,
        store: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        precondition(spectrum.count >= halfCount)
        let base = SendablePointer(spectrum.baseAddress!)
        planePass(base, inverse: false, support: inputPlanes, load)
        columnPass(from: base, to: base, forward: true, normalized: normalized, input: inputPlanes, output: outputPlanes,
                   product: product)
        planePass(base, inverse: true, support: outputPlanes, store)
        recordTransforms(2)
    }

    /// spectrum ← F[x], with input plane z written by `load(z, plane)`; `inspect` sees (and may
    /// change) each block of finished spectral columns before it is stored. Input planes outside
    /// `inputPlanes` are zero (nil: every plane is loaded). Counts one transform.
    public func forward(
        into spectrum: UnsafeMutableBufferPointer<Complex<Float>>, inputPlanes: PlaneSupport? = nil,
        load: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void,
        inspect: @Sendable (SpectralColumns) -> Void = { _ in }
    ) {
        precondition(spectrum.count >= halfCount)
        let base = SendablePointer(spectrum.baseAddress!)
        planePass(base, inverse: false, support: inputPlanes, load)
        columnPass(from: base, to: base, forward: true, inverse: false, normalized: false, input: inputPlanes, output: nil,
                   product: inspect)
        recordTransforms(1)
    }

    /// F⁻¹[P(s)] for a kept spectrum `s` (not modified): `product` transforms each block of
    /// columns of s, `store(z, plane)` reads output plane z; `scratch` is half-spectrum size.
    /// Normalised by 1/N unless `normalized` is false; output planes outside `outputPlanes` are
    /// not computed (nil: every plane). Counts one transform.
    public func inverse(
        _ s: UnsafeBufferPointer<Complex<Float>>, scratch: UnsafeMutableBufferPointer<Complex<Float>>,
        normalized: Bool = true, outputPlanes: PlaneSupport? = nil,
        product: @Sendable (SpectralColumns) -> Void,
        store: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        precondition(s.count >= halfCount && scratch.count >= halfCount)
        let out = SendablePointer(scratch.baseAddress!)
        columnPass(from: SendablePointer(UnsafeMutablePointer(mutating: s.baseAddress!)), to: out,
                   forward: false, normalized: normalized, input: nil, output: outputPlanes, product: product)
        planePass(out, inverse: true, support: outputPlanes, store)
        recordTransforms(1)
    }

    /// F⁻¹[P(s)] with `s` overwritten (its columns, then its planes, serve as the work space):
    /// `product` transforms each block of columns, `store(z, plane)` reads output plane z.
    /// Normalised by 1/N unless `normalized` is false; output planes outside `outputPlanes` are
    /// not computed (nil: every plane). Counts one transform.
    public func inverse(
        inPlace s: UnsafeMutableBufferPointer<Complex<Float>>, normalized: Bool = true, outputPlanes: PlaneSupport? = nil,
        product: @Sendable (SpectralColumns) -> Void,
        store: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        precondition(s.count >= halfCount)
        let base = SendablePointer(s.baseAddress!)
        columnPass(from: base, to: base, forward: false, normalized: normalized, input: nil, output: outputPlanes,
                   product: product)
        planePass(base, inverse: true, support: outputPlanes, store)
        recordTransforms(1)
    }

    // MARK: Implementation details

    /// Columns per block: 16 complex values (two cache lines) per z, 176 z → 22 KB in L1/L2.
    public static var columnBlock: Int { 16 }

    private var planeCount: Int { (shape.x / 2 + 1) * shape.y }

    private func fusedPlan(_ kind: FFTKind, _ shape: SIMD3<Int>, aligned: Bool) -> FFTPlan {
        let key = FFTPlan.Key(shape: shape, kind: kind, precision: .single, inPlace: kind == .columnsForward || kind == .columnsBackward,
                              aligned: aligned, threads: 1, planning: planning)
        do { return try FFTPlanCache.shared.plan(key) } catch { fatalError("\(error)") }
    }

    /// Planes start at multiples of planeCount complex values: SIMD-aligned only if that stride is.
    private func planesAligned(_ base: UnsafeMutableRawPointer) -> Bool {
        FFTPlan.isAligned(base, .single) && (planeCount * 8) % 64 == 0
    }

    /// 2-D transforms of the x–y planes of `support` (nil: all), each through a per-thread plane
    /// buffer that `body` fills (forward, before the transform) or reads (inverse, after it).
    private func planePass(_ spectrum: SendablePointer<Complex<Float>>, inverse: Bool, support: PlaneSupport?,
                           _ body: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        precondition(support.map { $0.flags.count == shape.z } ?? true, "plane support of another depth")
        let plan = fusedPlan(inverse ? .planeComplexToReal : .planeRealToComplex, shape,
                             aligned: planesAligned(UnsafeMutableRawPointer(spectrum.base)))
        let planeSize = shape.x * shape.y, planeCount = planeCount
        let planes = support?.planes, run = planes?.count ?? shape.z, skipped = shape.z - run
        FFTStatistics.planeCounter.add(run, ordering: .relaxed)
        FFTStatistics.skippedPlaneCounter.add(skipped, ordering: .relaxed)
        FFTStatistics.skippedPassMillionths.add(skipped * 1_000_000 / shape.z, ordering: .relaxed)
        parallelFor(0..<run) { ks in
            let plane = fftwf_malloc(planeSize * 4)!.bindMemory(to: Float.self, capacity: planeSize)
            defer { fftwf_free(plane) }
            let buffer = UnsafeMutableBufferPointer(start: plane, count: planeSize), real = UnsafeMutableRawPointer(plane)
            for k in ks {
                let z = planes?[k] ?? k
                let half = UnsafeMutableRawPointer(spectrum.base + z * planeCount)
                if inverse {
                    plan.execute(half, real)
                    body(z, buffer)
                } else {
                    body(z, buffer)
                    plan.execute(real, half)
                }
            }
        }
    }

    /// Gathers blocks of columns of `source`, applies the z transform(s) and `product`, scatters to
    /// `destination` (may equal `source`). `forward`: forward z transform first; `inverse`: backward after.
    /// Rows of planes outside `input` are read as zero; rows of planes outside `output` are not written.
    private func columnPass(
        from source: SendablePointer<Complex<Float>>, to destination: SendablePointer<Complex<Float>>,
        forward: Bool, inverse: Bool = true, normalized: Bool, input: PlaneSupport?, output: PlaneSupport?,
        product: @Sendable (SpectralColumns) -> Void
    ) {
        let inputFlags = input?.flags, outputFlags = output?.flags
        let block = Self.columnBlock, depth = shape.z, planeCount = planeCount
        let blocks = (planeCount + block - 1) / block
        let shape = SIMD3(block, 1, depth)
        let forwardPlan = forward ? fusedPlan(.columnsForward, shape, aligned: true) : nil
        let backwardPlan = inverse ? fusedPlan(.columnsBackward, shape, aligned: true) : nil
        let scale: Float = normalized ? 1 / Float(count) : 1
        parallelFor(0..<blocks) { range in
            let raw = fftwf_malloc(block * depth * 8)!
            defer { fftwf_free(raw) }
            let values = raw.bindMemory(to: Complex<Float>.self, capacity: block * depth)
            for b in range {
                let first = b * block, width = min(block, planeCount - first)
                let ahead = b + 1 < range.upperBound ? first + block : -1
                if width < block { values.initialize(repeating: .zero, count: block * depth) }
                for z in 0..<depth {
                    if let inputFlags, !inputFlags[z] {
                        (values + z * block).initialize(repeating: .zero, count: block)
                        continue
                    }
                    let row = source.base + first + planeCount * z
                    if ahead >= 0 {
                        // The next block's row: each z is a different page, so prefetch it now.
                        let next = UnsafeRawPointer(row + block)
                        qsm_prefetch(next); qsm_prefetch(next + 64); qsm_prefetch(next + 127)
                    }
                    if width == 16 { Self.copy16(from: row, to: values + z * block) } else { (values + z * block).update(from: row, count: width) }
                }
                forwardPlan?.execute(raw, raw)
                product(SpectralColumns(values: values, first: first, count: width, stride: block,
                                         planeCount: planeCount, depth: depth))
                if scale != 1 {
                    for i in 0..<(block * depth) { values[i] = Complex(values[i].real * scale, values[i].imaginary * scale) }
                }
                backwardPlan?.execute(raw, raw)
                for z in 0..<depth {
                    if let outputFlags, !outputFlags[z] { continue }
                    let row = destination.base + first + planeCount * z
                    if ahead >= 0 && destination.base != source.base {
                        let next = UnsafeRawPointer(row + block)
                        qsm_prefetch_for_write(next); qsm_prefetch_for_write(next + 64); qsm_prefetch_for_write(next + 127)
                    }
                    if width == 16 { Self.copy16(from: values + z * block, to: row) } else { row.update(from: values + z * block, count: width) }
                }
            }
        }
    }

    /// 16 complex values (128 bytes) copied inline: a library call per short row costs more than the copy.
    @inline(__always) private static func copy16(from source: UnsafePointer<Complex<Float>>, to target: UnsafeMutablePointer<Complex<Float>>) {
        let s = UnsafeRawPointer(source), t = UnsafeMutableRawPointer(target)
        for k in stride(from: 0, to: 128, by: 32) { t.storeBytes(of: s.loadUnaligned(fromByteOffset: k, as: SIMD8<Float>.self), toByteOffset: k, as: SIMD8<Float>.self) }
    }

    private func recordTransforms(_ n: Int) {
        FFTStatistics.counter.add(n, ordering: .relaxed)
        for _ in 0..<n { FFTStatistics.record(FFTTransformKind(shape: shape, complex: false, double: false)) }
    }
}
