import ComplexModule
import Synchronization

/// 3-D FFTs of one shape (x fastest), real-to-complex and complex-to-complex, single or double.
///
/// The half spectrum of a real volume has shape (nx/2+1, ny, nz), x fastest. Forward transforms
/// are unnormalised; inverse transforms multiply by 1/N unless `normalized` is false. Plans come
/// from a process-wide cache and are made with `Parallelism.threadCount` threads.
public struct FFT<T: FFTScalar>: Sendable {
    /// Shape of the real (spatial) volume.
    public let shape: SIMD3<Int>
    /// Planning effort for plans this value makes.
    public let planning: FFTPlanning
    /// Threads for these transforms; nil follows `Parallelism.threadCount` at execution time.
    public let threads: Int?

    /// FFTs of `shape`; throws for non-positive dimensions.
    public init(shape: SIMD3<Int>, planning: FFTPlanning = .estimate, threads: Int? = nil) throws(QSMError) {
        guard shape.x > 0, shape.y > 0, shape.z > 0 else {
            throw .invalidParameter("FFT shape", "\(shape.x)×\(shape.y)×\(shape.z) has a non-positive dimension")
        }
        self.shape = shape
        self.planning = planning
        self.threads = threads.map { max(1, $0) }
    }

    /// Number of real voxels.
    public var count: Int { shape.x * shape.y * shape.z }
    /// Shape of the half spectrum, (nx/2+1, ny, nz).
    public var halfShape: SIMD3<Int> { SIMD3(shape.x / 2 + 1, shape.y, shape.z) }
    /// Number of complex values in the half spectrum.
    public var halfCount: Int { (shape.x / 2 + 1) * shape.y * shape.z }

    // MARK: Buffer API (no allocation)

    /// Real → half spectrum. `input` is not modified.
    public func forward(_ input: UnsafeBufferPointer<T>, into output: UnsafeMutableBufferPointer<Complex<T>>) {
        precondition(input.count >= count && output.count >= halfCount)
        let i = UnsafeMutableRawPointer(mutating: input.baseAddress!)
        let o = UnsafeMutableRawPointer(output.baseAddress!)
        run(.realToComplex, i, o, inPlace: false)
    }

    /// Half spectrum → real. `input` is overwritten (FFTW's c2r destroys its input).
    public func inverse(
        _ input: UnsafeMutableBufferPointer<Complex<T>>, into output: UnsafeMutableBufferPointer<T>,
        normalized: Bool = true
    ) {
        precondition(input.count >= halfCount && output.count >= count)
        run(.complexToReal, UnsafeMutableRawPointer(input.baseAddress!),
            UnsafeMutableRawPointer(output.baseAddress!), inPlace: false)
        if normalized { Self.scale(output, by: 1 / T(count), count: count) }
    }

    /// Full complex transform in place; `.backward` is normalised by 1/N unless `normalized` is false.
    public func transform(
        _ data: UnsafeMutableBufferPointer<Complex<T>>, _ direction: FFTDirection, normalized: Bool = true
    ) {
        precondition(data.count >= count)
        let p = UnsafeMutableRawPointer(data.baseAddress!)
        run(direction == .forward ? .complexForward : .complexBackward, p, p, inPlace: true)
        if direction == .backward && normalized {
            data.withMemoryRebound(to: T.self) { Self.scale($0, by: 1 / T(count), count: 2 * count) }
        }
    }

    // MARK: Array API

    /// Real → half spectrum.
    public func forward(_ input: [T]) -> [Complex<T>] {
        // The transform writes every element: no zero fill first.
        [Complex<T>](unsafeUninitializedCapacity: halfCount) { buffer, initialized in
            input.withUnsafeBufferPointer { forward($0, into: buffer) }
            initialized = halfCount
        }
    }

    /// Half spectrum → real (normalised by 1/N unless `normalized` is false).
    public func inverse(_ input: [Complex<T>], normalized: Bool = true) -> [T] {
        var scratch = input
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            scratch.withUnsafeMutableBufferPointer { inverse($0, into: buffer, normalized: normalized) }
            initialized = count
        }
    }

    /// Full complex transform of an array.
    public func transform(_ input: [Complex<T>], _ direction: FFTDirection, normalized: Bool = true) -> [Complex<T>] {
        var data = input
        data.withUnsafeMutableBufferPointer { transform($0, direction, normalized: normalized) }
        return data
    }

    // MARK: Implementation details

    private func run(_ kind: FFTKind, _ input: UnsafeMutableRawPointer, _ output: UnsafeMutableRawPointer,
                     inPlace: Bool) {
        let aligned = FFTPlan.isAligned(input, T.fftPrecision) && FFTPlan.isAligned(output, T.fftPrecision)
        let key = FFTPlan.Key(shape: shape, kind: kind, precision: T.fftPrecision, inPlace: inPlace,
                              aligned: aligned, threads: threads ?? Parallelism.threadCount, planning: planning)
        // Planning fails only if FFTW cannot allocate; that is not recoverable for the caller.
        let plan: FFTPlan
        do { plan = try FFTPlanCache.shared.plan(key) } catch { fatalError("\(error)") }
        plan.execute(input, output)
        FFTStatistics.counter.add(1, ordering: .relaxed)
        FFTStatistics.record(FFTTransformKind(shape: shape, complex: kind == .complexForward || kind == .complexBackward,
                                              double: T.fftPrecision == .double))
    }

    static func scale(_ buffer: UnsafeMutableBufferPointer<T>, by factor: T, count: Int) {
        // Concrete loops: a generic multiply called from another module is not specialised and
        // costs several times the memory pass.
        let raw = UnsafeMutableRawPointer(buffer.baseAddress!)
        switch T.fftPrecision {
        case .single:
            let p = SendablePointer(raw.assumingMemoryBound(to: Float.self)), f = Float(factor)
            parallelFor(0..<count) { range in for i in range { p[i] *= f } }
        case .double:
            let p = SendablePointer(raw.assumingMemoryBound(to: Double.self)), f = Double(factor)
            parallelFor(0..<count) { range in for i in range { p[i] *= f } }
        }
    }
}

/// What one executed transform was: its spatial shape, complex-to-complex or real, and precision.
public struct FFTTransformKind: Hashable, Sendable {
    /// Spatial shape.
    public var shape: SIMD3<Int>
    /// Complex-to-complex (true) or real-to-complex / complex-to-real (false).
    public var complex: Bool
    /// Double (true) or Float (false) precision.
    public var double: Bool
    /// The kind of a transform.
    public init(shape: SIMD3<Int>, complex: Bool, double: Bool) {
        self.shape = shape
        self.complex = complex
        self.double = double
    }
}

/// Direction of a complex FFT.
public enum FFTDirection: Sendable {
    /// exp(−2πi k·x/N), unnormalised.
    case forward
    /// exp(+2πi k·x/N), normalised by 1/N by default.
    case backward
}

/// Counts executed 3-D transforms, so benchmarks can report time ÷ (FFT count × one FFT's time).
public enum FFTStatistics {
    static let counter = Atomic<Int>(0)
    static let tallies = Mutex<[FFTTransformKind: Int]>([:])
    /// Transforms executed by this process so far.
    public static var executedTransforms: Int { counter.load(ordering: .relaxed) }
    /// Transforms executed so far per shape, type and precision: what an FFT floor must be
    /// weighted by when a method transforms padded shapes or complex data.
    public static var executedTransformsByKind: [FFTTransformKind: Int] { tallies.withLock { $0 } }

    static func record(_ kind: FFTTransformKind) {
        tallies.withLock { $0[kind, default: 0] += 1 }
    }
    static let planeCounter = Atomic<Int>(0), skippedPlaneCounter = Atomic<Int>(0), skippedPassMillionths = Atomic<Int>(0)
    /// 2-D plane transforms of fused transforms (`FFT.filter` and kin) so far: run, and skipped
    /// because a `PlaneSupport` left their plane out (empty input or unneeded output).
    public static var planeTransforms: (run: Int, skipped: Int) {
        (planeCounter.load(ordering: .relaxed), skippedPlaneCounter.load(ordering: .relaxed))
    }
    /// The skipped plane transforms in units of whole plane passes (each skipped plane counts
    /// 1/depth of its transform's plane pass): the plane work pruning saved, in transforms.
    public static var skippedPlanePasses: Double { Double(skippedPassMillionths.load(ordering: .relaxed)) / 1e6 }
    /// Number of cached plans for transforms of `shape` (unaffected by other shapes' planning).
    public static func cachedPlans(shape: SIMD3<Int>) -> Int { FFTPlanCache.shared.count(shape: shape) }
    /// Destroys every cached plan (the next transform of each shape plans again).
    public static func removeCachedPlans() { FFTPlanCache.shared.removeAll() }
}
