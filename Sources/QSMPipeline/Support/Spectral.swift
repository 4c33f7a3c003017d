import QSMCore
#if canImport(Glibc)
import Glibc
#endif

/// Real FFTs of one shape on Float arrays, with the spectral products the stages share.
///
/// Every transform goes through `FFT<Float>` (so `FFTStatistics` counts it); elementwise work is
/// split over `parallelFor` because at 256×256×176 one pass over the voxels costs ~5 % of an FFT.
struct Spectral: Sendable {
    let fft: FFT<Float>
    var shape: SIMD3<Int> { fft.shape }
    var count: Int { fft.count }
    var halfCount: Int { fft.halfCount }

    init(shape: SIMD3<Int>) throws(QSMError) { fft = try FFT<Float>(shape: shape) }

    /// F[x] on the half spectrum.
    func forward(_ x: [Float]) -> [Complex<Float>] {
        // The r2c transform writes every element: no zero fill (a serial pass over 47 MB at 256×256×176).
        [Complex<Float>](unsafeUninitializedCapacity: halfCount) { buffer, initialized in
            x.withUnsafeBufferPointer { fft.forward($0, into: buffer) }
            initialized = halfCount
        }
    }

    /// F⁻¹[s] (normalised); `s` is consumed.
    func inverse(consuming s: inout [Complex<Float>], normalized: Bool = true) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            s.withUnsafeMutableBufferPointer { fft.inverse($0, into: buffer, normalized: normalized) }
            initialized = count
        }
    }

    /// 1/N, folded into the spectral products so inverse transforms skip their own scaling pass.
    var normalization: Float { 1 / Float(count) }

    /// F⁻¹[K · F[x]] for a real kernel K: a circular convolution with an even kernel (2 FFTs).
    func filter(_ x: [Float], kernel: [Float]) -> [Float] {
        var s = forward(x)
        VoxelLoop.multiply(&s, by: kernel, scale: normalization)
        return inverse(consuming: &s, normalized: false)
    }
}

/// Parallel elementwise loops over voxel arrays.
enum VoxelLoop {
    /// s[i] ← s[i]·k[i].
    static func multiply(_ s: inout [Complex<Float>], by kernel: [Float], scale: Float = 1) {
        precondition(s.count == kernel.count)
        s.withUnsafeMutableBufferPointer { sb in
            kernel.withUnsafeBufferPointer { kb in
                let sp = SendablePointer(sb.baseAddress!)
                let kp = SendablePointer(UnsafeMutablePointer(mutating: kb.baseAddress!))
                parallelFor(0..<sb.count) { r in
                    for i in r { let k = kp[i] * scale; sp[i] = Complex(sp[i].real * k, sp[i].imaginary * k) }
                }
            }
        }
    }

    /// a[i] ← body(i, a[i]) in parallel; `body` must only read shared state.
    static func update(_ a: inout [Float], _ body: @Sendable (Int, Float) -> Float) {
        a.withUnsafeMutableBufferPointer { ab in
            let ap = SendablePointer(ab.baseAddress!)
            parallelFor(0..<ab.count) { r in for i in r { ap[i] = body(i, ap[i]) } }
        }
    }

    /// `count` zeros, written in parallel: the first touch of a fresh 46 MB array (page faults and
    /// zeroing) is most of what a serial `[Float](repeating: 0, …)` costs.
    static func zeros(_ count: Int) -> [Float] { parallelZeros(count) }

    /// `count` complex zeros, written in parallel (see `zeros`).
    static func complexZeros(_ count: Int) -> [Complex<Float>] { parallelZeros(count) }

    private static func parallelZeros<Element: AdditiveArithmetic & Sendable>(_ count: Int) -> [Element] {
        [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                let p = SendablePointer(buffer.baseAddress!)
                parallelFor(0..<count) { r in (p.base + r.lowerBound).initialize(repeating: .zero, count: r.count) }
            }
            initialized = count
        }
    }

    /// Booleans generated in parallel.
    @inline(__always)
    static func generateFlags(count: Int, _ body: @Sendable (Int) -> Bool) -> [Bool] {
        var out = [Bool](repeating: false, count: count)
        out.withUnsafeMutableBufferPointer { ob in
            let op = SendablePointer(ob.baseAddress!)
            parallelFor(0..<count) { r in for i in r { op[i] = body(i) } }
        }
        return out
    }

    /// Whether every value is finite (parallel).
    static func allFinite(_ a: UnsafeBufferPointer<Float>) -> Bool {
        finiteRange(a) != nil
    }

    /// (min, max) of `a` if every value is finite, else nil; one parallel pass.
    static func finiteRange(_ a: UnsafeBufferPointer<Float>) -> (low: Float, high: Float)? {
        guard let base = a.baseAddress, a.count > 0 else { return (.infinity, -.infinity) }
        let p = ReadPointer(base), count = a.count
        let chunks = max(1, min(64, count / 4096))
        var lows = [Float](repeating: .infinity, count: chunks), highs = [Float](repeating: -.infinity, count: chunks)
        var finite = [Bool](repeating: true, count: chunks)
        lows.withUnsafeMutableBufferPointer { lb in highs.withUnsafeMutableBufferPointer { hb in
            finite.withUnsafeMutableBufferPointer { fb in
                let lp = SendablePointer(lb.baseAddress!), hp = SendablePointer(hb.baseAddress!), fp = SendablePointer(fb.baseAddress!)
                parallelFor(0..<chunks) { cs in
                    for c in cs {
                        let r = count * c / chunks..<count * (c + 1) / chunks
                        // 8 lanes at a time: v − v is 0 for finite v and NaN otherwise, and NaN
                        // survives the running sum, so one vector test at the end decides.
                        var low = SIMD8<Float>(repeating: .infinity), high = SIMD8<Float>(repeating: -.infinity)
                        var check = SIMD8<Float>(repeating: 0)
                        var i = r.lowerBound
                        let raw = UnsafeRawPointer(p.base)
                        while i + 8 <= r.upperBound {
                            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                            check += v - v
                            low.replace(with: v, where: v .< low)
                            high.replace(with: v, where: v .> high)
                            i += 8
                        }
                        var lo = low.min(), hi = high.max(), ok = check == SIMD8(repeating: 0)
                        while i < r.upperBound {
                            let v = p[i]
                            ok = ok && v.isFinite
                            lo = min(lo, v); hi = max(hi, v)
                            i += 1
                        }
                        lp[c] = lo; hp[c] = hi; fp[c] = ok
                    }
                }
            }
        } }
        guard !finite.contains(false) else { return nil }
        return (lows.min()!, highs.max()!)
    }

    /// Whether any flag is set (memchr over the bytes).
    static func anyTrue(_ flags: [Bool]) -> Bool {
        flags.withUnsafeBytes { b in b.count > 0 && memchr(b.baseAddress!, 1, b.count) != nil }
    }

    /// out[i] = body(i) for every i, in parallel; `body` must only read shared state.
    @inline(__always)
    static func generate(count: Int, _ body: @Sendable (Int) -> Float) -> [Float] {
        // Every element is written below, in parallel: no serial zero fill first.
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                let op = SendablePointer(buffer.baseAddress!)
                parallelFor(0..<count) { r in for i in r { op[i] = body(i) } }
            }
            initialized = count
        }
    }

    /// Σ a[i]·b[i] in Double, deterministic (fixed chunking, chunk sums added in order).
    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        return a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                let ap = ReadPointer(ab.baseAddress!), bp = ReadPointer(bb.baseAddress!)
                return chunkedSum(count: ab.count) { r in
                    var s = 0.0
                    for i in r { s += Double(ap[i]) * Double(bp[i]) }
                    return s
                }
            }
        }
    }

    /// Σ over fixed chunks of `count` of `part(range)`, in chunk order (same result on any thread count).
    static func chunkedSum(count: Int, _ part: @Sendable (Range<Int>) -> Double) -> Double {
        let chunks = max(1, min(64, count / 4096))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { pb in
            let pp = SendablePointer(pb.baseAddress!)
            parallelFor(0..<chunks) { cr in
                for c in cr { pp[c] = part(count * c / chunks..<count * (c + 1) / chunks) }
            }
        }
        return partial.reduce(0, +)
    }
}

/// A read-only pointer that may cross into `parallelFor` bodies.
struct ReadPointer<Element>: @unchecked Sendable {
    let base: UnsafePointer<Element>
    init(_ base: UnsafePointer<Element>) { self.base = base }
    subscript(index: Int) -> Element { base[index] }
}

extension Volume where Element == Float {
    /// Throws if any voxel inside `mask` is NaN or infinite, naming `subject`.
    func requireFinite(in mask: Mask, _ subject: String) throws(QSMError) {
        if withVoxels({ VoxelLoop.allFinite(UnsafeBufferPointer(rebasing: $0[0..<grid.count])) }) { return }
        for i in 0..<grid.count where mask.voxels[i] && !voxels[i].isFinite {
            let z = i / (grid.shape.x * grid.shape.y), y = (i / grid.shape.x) % grid.shape.y, x = i % grid.shape.x
            throw .invalidFile(subject, "non-finite value \(voxels[i]) at voxel (\(x), \(y), \(z)) inside the mask")
        }
    }
}

/// Common input checks of the field stages.
enum InputCheck {
    /// Throws unless `mask` matches `volume`'s grid, `volume` is 3-D and the mask is not empty.
    static func field(_ volume: Volume<Float>, mask: Mask, name: String) throws(QSMError) {
        try volume.grid.requireMatches(mask.grid, name, "mask")
        guard volume.frames == 1 else { throw .mismatch(name, "has \(volume.frames) frames; expected one 3-D volume") }
        guard mask.insideCount > 0 else { throw .mismatch("mask", "no voxel is inside the mask") }
        try volume.requireFinite(in: mask, name)
    }
}
