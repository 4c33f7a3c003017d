import QSMCore

/// The padded FFT grid an FFT-based inversion works on: dipole kernel, Laplacian symbol, FFT.
///
/// Padding follows QSM.jl's default: grow each axis by `padding` voxels, then to the next
/// 2^a·3^b·5^c·7^d length. Differences are periodic on the padded grid, so the Fourier symbol of
/// ∇ᵀ∇ is exactly Σ_i (2 − 2cos(2π m_i/N_i))/Δ_i² (QSM.md §7).
struct InversionGrid {
    let original: Grid
    let shape: SIMD3<Int>
    let voxelSize: SIMD3<Double>
    let fft: FFT<Float>
    /// D(k) on the half spectrum.
    let dipole: [Float]
    /// Eigenvalues of −∇² (forward differences, periodic) on the half spectrum.
    let laplacian: [Float]

    /// The padded grid of `grid`; `withLaplacian: false` leaves `laplacian` empty (methods without ∇),
    /// `withDipole: false` leaves `dipole` empty (methods that evaluate D on the fly).
    init(_ grid: Grid, padding: Int, context: StageContext, withLaplacian: Bool = true, withDipole: Bool = true) throws(QSMError) {
        try context.validate()
        original = grid
        shape = FFTSize.paddedShape(grid.shape, padding: SIMD3(repeating: padding))
        voxelSize = grid.voxelSize
        fft = try FFT<Float>(shape: shape)
        dipole = !withDipole ? [] : DipoleKernel.halfSpectrum(shape: shape, voxelSize: voxelSize, b0Direction: context.b0Direction,
                                           dc: context.conventions.dipoleDC)
        laplacian = withLaplacian ? Self.negatedLaplacian(shape: shape, voxelSize: voxelSize) : []
    }

    /// −λ of the periodic 7-point Laplacian (`LaplacianEigenvalues`, Double sums rounded to Float,
    /// negated), written in parallel over z: a serial pass and a negation pass cost a few FFTs'
    /// worth of time at 256×256×176.
    private static func negatedLaplacian(shape: SIMD3<Int>, voxelSize: SIMD3<Double>) -> [Float] {
        let hx = shape.x / 2 + 1, ny = shape.y
        let lx = LaplacianEigenvalues.axis(shape.x, count: hx, spacing: voxelSize.x)
        let ly = LaplacianEigenvalues.axis(shape.y, count: shape.y, spacing: voxelSize.y)
        let lz = LaplacianEigenvalues.axis(shape.z, count: shape.z, spacing: voxelSize.z)
        return uninitializedArray(count: hx * ny * shape.z) { out in
            parallelFor(0..<shape.z) { zs in
                for z in zs {
                    for y in 0..<ny {
                        let row = hx * (y + ny * z)
                        for x in 0..<hx { out[row + x] = -Float(lx[x] + ly[y] + lz[z]) }
                    }
                }
            }
        }
    }

    var count: Int { shape.x * shape.y * shape.z }
    var halfCount: Int { fft.halfCount }

    /// Where the original grid starts inside the padded one (centred, as `Volume.padded`).
    var offset: SIMD3<Int> { (shape &- original.shape) / 2 }

    /// The planes of this grid holding voxels of `mask` (nil: of the original grid): the support of
    /// masked or padded inputs, and of outputs cropped (and masked), in fused transforms.
    func planes(mask: [Bool]?) -> PlaneSupport {
        let inner = original.shape
        guard let mask else { return PlaneSupport(depth: shape.z, ranges: [offset.z..<(offset.z + inner.z)]) }
        let own = mask.withUnsafeBufferPointer { PlaneSupport(occupiedBy: $0, planeSize: inner.x * inner.y) }
        return own.embedded(at: offset.z, depth: shape.z)
    }

    /// `volume` zero-padded onto this grid (centred).
    func pad(_ values: [Float]) -> [Float] { pad(values, mask: nil) }

    /// `values` zero outside `mask` (when given), zero-padded onto this grid (centred): one parallel
    /// pass that writes every element once (no zero-fill first: at 256×256×176 a zeroed 47 MB array
    /// costs about half an FFT, and first touches in parallel spread the page faults over the threads).
    func pad(_ values: [Float], mask: [Bool]?) -> [Float] {
        precondition(values.count == original.count && (mask?.count ?? values.count) == values.count)
        let planeSize = shape.x * shape.y
        return values.withUnsafeBufferPointer { vb in
            let src = ReadPointer(vb.baseAddress!)
            func fill(_ keep: ReadPointer<Bool>?) -> [Float] {
                uninitializedArray(count: count) { dst in
                    parallelFor(0..<shape.z) { zs in
                        for z in zs {
                            padPlane(z, UnsafeMutableBufferPointer(start: dst.base + planeSize * z, count: planeSize),
                                     values: src, mask: keep)
                        }
                    }
                }
            }
            if let mask { return mask.withUnsafeBufferPointer { fill(ReadPointer($0.baseAddress!)) } }
            return fill(nil)
        }
    }

    /// Plane z of `pad(values, mask:)` written into `plane` (the load of a fused transform).
    func padPlane(_ z: Int, _ plane: UnsafeMutableBufferPointer<Float>, values src: ReadPointer<Float>, mask keep: ReadPointer<Bool>?) {
        let (inner, outer, o) = (original.shape, shape, offset)
        let dst = plane.baseAddress!
        guard (o.z..<o.z + inner.z).contains(z) else {
            dst.update(repeating: 0, count: outer.x * outer.y)
            return
        }
        for y in 0..<outer.y {
            let d = outer.x * y
            guard (o.y..<o.y + inner.y).contains(y) else {
                (dst + d).update(repeating: 0, count: outer.x)
                continue
            }
            let s = inner.x * ((y - o.y) + inner.y * (z - o.z))
            for x in 0..<o.x { dst[d + x] = 0 }
            if let keep {
                for x in 0..<inner.x { dst[d + o.x + x] = keep[s + x] ? src[s + x] : 0 }
            } else {
                for x in 0..<inner.x { dst[d + o.x + x] = src[s + x] }
            }
            for x in o.x + inner.x..<outer.x { dst[d + x] = 0 }
        }
    }

    /// The original-grid part of padded plane z written into `out` (original grid), zero outside
    /// `mask` when given (the store of a fused transform); planes outside the original grid are skipped.
    func cropPlane(_ z: Int, _ plane: UnsafeMutableBufferPointer<Float>, into dst: SendablePointer<Float>, mask keep: ReadPointer<Bool>?) {
        let (inner, outer, o) = (original.shape, shape, offset)
        guard (o.z..<o.z + inner.z).contains(z) else { return }
        let src = plane.baseAddress!
        for y in 0..<inner.y {
            let d = inner.x * (y + inner.y * (z - o.z)), s = o.x + outer.x * (y + o.y)
            if let keep {
                for x in 0..<inner.x { dst[d + x] = keep[d + x] ? src[s + x] : 0 }
            } else {
                for x in 0..<inner.x { dst[d + x] = src[s + x] }
            }
        }
    }

    /// s ← F[pad(values, mask:)] in one fused sweep (the padded array is never formed).
    /// `inspect` sees each block of finished spectral columns (`FFT.forward(into:inputPlanes:load:inspect:)`).
    func forwardPadded(_ values: [Float], mask: [Bool]?, into s: inout [Complex<Float>],
                       inspect: @Sendable (SpectralColumns) -> Void = { _ in }) {
        precondition(values.count == original.count && (mask?.count ?? values.count) == values.count)
        values.withUnsafeBufferPointer { vb in s.withUnsafeMutableBufferPointer { sb in
            let src = ReadPointer(vb.baseAddress!)
            let support = planes(mask: mask)
            func run(_ keep: ReadPointer<Bool>?) {
                fft.forward(into: sb, inputPlanes: support, load: { z, plane in self.padPlane(z, plane, values: src, mask: keep) },
                            inspect: inspect)
            }
            if let mask { mask.withUnsafeBufferPointer { run(ReadPointer($0.baseAddress!)) } } else { run(nil) }
        } }
    }

    /// The original-grid part of a padded array, as a volume with the original geometry.
    func crop(_ values: [Float]) -> Volume<Float> { crop(values, mask: nil) }

    /// The original-grid part of a padded array, zero outside `mask` (when given): one parallel pass.
    func crop(_ values: [Float], mask: Mask?) -> Volume<Float> {
        precondition(values.count == count && (mask?.grid.count ?? original.count) == original.count)
        let (inner, outer, o) = (original.shape, shape, offset)
        let out = values.withUnsafeBufferPointer { vb in
            let src = ReadPointer(vb.baseAddress!)
            func fill(_ keep: ReadPointer<Bool>?) -> [Float] {
                uninitializedArray(count: original.count) { dst in
                    parallelFor(0..<inner.z) { zs in
                        for z in zs { for y in 0..<inner.y {
                            let d = inner.x * (y + inner.y * z), s = o.x + outer.x * ((y + o.y) + outer.y * (z + o.z))
                            if let keep {
                                for x in 0..<inner.x { dst[d + x] = keep[d + x] ? src[s + x] : 0 }
                            } else {
                                for x in 0..<inner.x { dst[d + x] = src[s + x] }
                            }
                        } }
                    }
                }
            }
            if let mask { return mask.voxels.withUnsafeBufferPointer { fill(ReadPointer($0.baseAddress!)) } }
            return fill(nil)
        }
        return Volume(unchecked: original, out)
    }

    /// As `crop(_:mask:)`, written into `storage` (a padded-size array no longer needed, not `values`):
    /// one parallel pass without a fresh array.
    func crop(_ values: [Float], mask: Mask, reusing storage: consuming [Float]) -> Volume<Float> {
        precondition(values.count == count && mask.grid.count == original.count)
        var out = consume storage
        guard out.count >= original.count else { return crop(values, mask: mask) }
        let (inner, outer, o) = (original.shape, shape, offset)
        out.withUnsafeMutableBufferPointer { ob in values.withUnsafeBufferPointer { vb in mask.voxels.withUnsafeBufferPointer { mb in
            let dst = SendablePointer(ob.baseAddress!), src = ReadPointer(vb.baseAddress!), keep = ReadPointer(mb.baseAddress!)
            parallelFor(0..<inner.z) { zs in
                for z in zs { for y in 0..<inner.y {
                    let d = inner.x * (y + inner.y * z), s = o.x + outer.x * ((y + o.y) + outer.y * (z + o.z))
                    for x in 0..<inner.x { dst[d + x] = keep[d + x] ? src[s + x] : 0 }
                } }
            }
        } } }
        out.removeLast(out.count - original.count)
        return Volume(unchecked: original, out)
    }

    /// As `crop(_:mask:)`, reusing `values`' storage when only z is padded: the original grid is then
    /// one contiguous run of planes, moved down in place (no fresh 46 MB array and its page faults).
    func crop(consuming values: consuming [Float], mask: Mask?) -> Volume<Float> {
        guard shape.x == original.shape.x, shape.y == original.shape.y, values.count == count else {
            return crop(values, mask: mask)
        }
        var out = consume values
        let start = offset.z * shape.x * shape.y, n = original.count
        out.withUnsafeMutableBufferPointer { b in
            if start > 0 { b.baseAddress!.update(from: b.baseAddress! + start, count: n) }   // memmove: overlapping
            if let mask {
                let o = SendablePointer(b.baseAddress!)
                mask.voxels.withUnsafeBufferPointer { mb in
                    let keep = ReadPointer(mb.baseAddress!)
                    parallelFor(0..<n) { r in for i in r where !keep[i] { o[i] = 0 } }
                }
            }
        }
        out.removeLast(count - n)
        return Volume(unchecked: original, out)
    }

    /// A half-spectrum buffer whose contents are unspecified (for FFT outputs, which overwrite it).
    func spectrumBuffer() -> [Complex<Float>] {
        [Complex<Float>](unsafeUninitializedCapacity: halfCount) { _, initialized in initialized = halfCount }
    }

    /// s ← F[x] on arrays.
    func forward(_ x: [Float], into s: inout [Complex<Float>]) {
        x.withUnsafeBufferPointer { i in s.withUnsafeMutableBufferPointer { fft.forward(i, into: $0) } }
    }

    /// out ← N·F⁻¹[s] (no 1/N: callers fold it into their spectral products); `s` is overwritten.
    func rawInverse(_ s: inout [Complex<Float>], into out: inout [Float]) {
        s.withUnsafeMutableBufferPointer { i in out.withUnsafeMutableBufferPointer { fft.inverse(i, into: $0, normalized: false) } }
    }

    /// out ← F⁻¹[D·F[x]] (two FFTs); `spectrum` (half-spectrum size) is overwritten.
    func applyDipole(_ x: [Float], into out: inout [Float], spectrum: inout [Complex<Float>]) {
        x.withUnsafeBufferPointer { i in spectrum.withUnsafeMutableBufferPointer { fft.forward(i, into: $0) } }
        // 1/N folded into the kernel pass, so the inverse skips its own scaling pass.
        VoxelLoop.multiply(&spectrum, by: dipole, scale: 1 / Float(count))
        spectrum.withUnsafeMutableBufferPointer { s in out.withUnsafeMutableBufferPointer { fft.inverse(s, into: $0, normalized: false) } }
    }

    /// Forward periodic differences (∂x, ∂y, ∂z) of `values` on this grid, in 1/mm.
    func gradient(_ values: [Float], into gx: inout [Float], _ gy: inout [Float], _ gz: inout [Float]) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        values.withUnsafeBufferPointer { v in
            let src = v.baseAddress!
            let ox = SendablePointer(gx.withUnsafeMutableBufferPointer { $0.baseAddress! })
            let oy = SendablePointer(gy.withUnsafeMutableBufferPointer { $0.baseAddress! })
            let oz = SendablePointer(gz.withUnsafeMutableBufferPointer { $0.baseAddress! })
            let input = SendablePointer(UnsafeMutablePointer(mutating: src))
            parallelFor(0..<nz) { zs in
                for z in zs {
                    let zn = z + 1 == nz ? 0 : z + 1
                    for y in 0..<ny {
                        let yn = y + 1 == ny ? 0 : y + 1
                        let row = nx * (y + ny * z)
                        // Periodic x neighbour as an argument: no wrap select in the interior loop.
                        @inline(__always) func at(_ x: Int, _ next: Int) {
                            let i = row + x
                            let c = input[i]
                            ox[i] = (input[row + next] - c) * hx
                            oy[i] = (input[x + nx * (yn + ny * z)] - c) * hy
                            oz[i] = (input[x + nx * (y + ny * zn)] - c) * hz
                        }
                        if nx > 1 { for x in 0..<nx - 1 { at(x, x + 1) } }
                        at(nx - 1, 0)
                    }
                }
            }
        }
    }

    /// The adjoint of `gradient`: ∇ᵀ(gx, gy, gz) = −(backward divergence).
    func gradientAdjoint(_ gx: [Float], _ gy: [Float], _ gz: [Float], into out: inout [Float]) {
        let (nx, ny, nz) = (shape.x, shape.y, shape.z)
        let (hx, hy, hz) = (Float(1 / voxelSize.x), Float(1 / voxelSize.y), Float(1 / voxelSize.z))
        let o = SendablePointer(out.withUnsafeMutableBufferPointer { $0.baseAddress! })
        gx.withUnsafeBufferPointer { ax in gy.withUnsafeBufferPointer { ay in gz.withUnsafeBufferPointer { az in
            let px = SendablePointer(UnsafeMutablePointer(mutating: ax.baseAddress!))
            let py = SendablePointer(UnsafeMutablePointer(mutating: ay.baseAddress!))
            let pz = SendablePointer(UnsafeMutablePointer(mutating: az.baseAddress!))
            parallelFor(0..<nz) { zs in
                for z in zs {
                    let zp = z == 0 ? nz - 1 : z - 1
                    for y in 0..<ny {
                        let yp = y == 0 ? ny - 1 : y - 1
                        let row = nx * (y + ny * z)
                        // Periodic x neighbour as an argument: no wrap select in the interior loop.
                        @inline(__always) func at(_ x: Int, _ previous: Int) {
                            let i = row + x
                            let xm = row + previous
                            o[i] = (px[xm] - px[i]) * hx + (py[x + nx * (yp + ny * z)] - py[i]) * hy
                                + (pz[x + nx * (y + ny * zp)] - pz[i]) * hz
                        }
                        at(0, nx - 1)
                        if nx > 1 { for x in 1..<nx { at(x, x - 1) } }
                    }
                }
            }
        } } }
    }
}

extension Volume {
    init(unchecked grid: Grid, _ voxels: [Element]) {
        // Sizes are guaranteed by the caller (internal use on padded grids).
        self = try! Volume(grid: grid, voxels: voxels)
    }
}

/// An array of `count` Floats every element of which `fill` writes (in parallel, through the pointer).
func uninitializedArray(count: Int, _ fill: (SendablePointer<Float>) -> Void) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if count > 0 { fill(SendablePointer(buffer.baseAddress!)) }
        initialized = count
    }
}

/// Euclidean norm accumulated in Double, deterministic for any thread count (fixed chunks).
func norm(_ values: [Float]) -> Double { VoxelLoop.dot(values, values).squareRoot() }

/// Up to four sums over fixed chunks of 0..<count, computed in parallel and added in chunk order,
/// so the result does not depend on the thread count (the chunking of `VoxelLoop.chunkedSum`).
/// `part` may also write to the indices of its own range (chunks are disjoint).
func chunkedSums(count: Int, _ part: @Sendable (Range<Int>) -> SIMD4<Double>) -> SIMD4<Double> {
    let chunks = max(1, min(64, count / 4096))
    var partial = [SIMD4<Double>](repeating: .zero, count: chunks)
    partial.withUnsafeMutableBufferPointer { pb in
        let pp = SendablePointer(pb.baseAddress!)
        parallelFor(0..<chunks) { cr in
            for c in cr { pp[c] = part(count * c / chunks..<count * (c + 1) / chunks) }
        }
    }
    return partial.reduce(.zero, +)
}

/// Σ_k part(k) for k in 0..<count (e.g. z-planes), parts computed in parallel and added in order of
/// k: the same result for any thread count. `part(k)` may write to the indices it owns.
func planeSums(count: Int, _ part: @Sendable (Int) -> SIMD4<Double>) -> SIMD4<Double> {
    var partial = [SIMD4<Double>](repeating: .zero, count: count)
    partial.withUnsafeMutableBufferPointer { pb in
        let pp = SendablePointer(pb.baseAddress!)
        parallelFor(0..<count) { ks in for k in ks { pp[k] = part(k) } }
    }
    return partial.reduce(.zero, +)
}

/// max(a, b) lane-wise, inlined (the standard library's generic `pointwiseMax` is called out of line).
@inline(__always) func lanewiseMaximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: b, where: b .> a)
    return r
}

/// a clamped to [−t, t] lane-wise (t ≥ 0), inlined.
@inline(__always) func lanewiseClamp(_ a: SIMD8<Float>, _ t: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: t, where: a .> t)
    r.replace(with: -t, where: a .< -t)
    return r
}

extension ReadPointer where Element == Float {
    /// The eight Floats from `index` (unaligned load).
    @inline(__always) func vector(at index: Int) -> SIMD8<Float> {
        UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<Float>.self)
    }
}

extension SendablePointer where Element == Float {
    /// The eight Floats from `index` (unaligned load).
    @inline(__always) func vector(at index: Int) -> SIMD8<Float> {
        UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Stores eight Floats from `index` (unaligned).
    @inline(__always) func setVector(_ value: SIMD8<Float>, at index: Int) {
        UnsafeMutableRawPointer(base + index).storeBytes(of: value, as: SIMD8<Float>.self)
    }
}

/// An iterative inversion: reports its iterations and, when asked, its objective per iteration.
public protocol IterativeInversion: DipoleInversion {
    /// χ (ppm, zero outside the mask) and what the iterations did.
    func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog)
}

extension IterativeInversion {
    /// χ in ppm on the field's grid.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float> {
        try invert(localField: localField, mask: mask, context: context, recordObjective: false).chi
    }
}
