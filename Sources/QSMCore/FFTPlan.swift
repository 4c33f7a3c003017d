import CFFTW
import ComplexModule

/// What an FFTW plan computes.
enum FFTKind: Hashable, Sendable {
    case realToComplex, complexToReal, complexForward, complexBackward
    /// Single precision only, for `FFT.filter`: 2-D transforms of one x–y plane of `shape`, and
    /// batches of `shape.x` interleaved 1-D complex transforms of length `shape.z` (in place).
    case planeRealToComplex, planeComplexToReal, columnsForward, columnsBackward
}

/// How hard FFTW searches for a fast plan; the choice is worth it only when a plan is reused.
public enum FFTPlanning: String, Sendable, Codable, CaseIterable {
    /// Heuristic plan, made in microseconds (FFTW_ESTIMATE).
    case estimate
    /// Timed plan, made in seconds, usually faster to execute (FFTW_MEASURE).
    case measure

    var flags: UInt32 {
        switch self {
        case .estimate: return UInt32(FFTW_ESTIMATE)
        case .measure: return UInt32(FFTW_MEASURE)
        }
    }
}

/// Owns one FFTW plan and destroys it in `deinit`.
///
/// Plans are executed with FFTW's new-array functions, which are thread-safe; creating and
/// destroying plans is not, so both happen under `FFTPlanCache`'s lock.
final class FFTPlan: @unchecked Sendable {
    struct Key: Hashable, Sendable {
        var shape: SIMD3<Int>
        var kind: FFTKind
        var precision: FFTPrecision
        var inPlace: Bool
        var aligned: Bool
        var threads: Int
        var planning: FFTPlanning
    }

    private let plan: OpaquePointer
    let key: Key

    /// Plans on scratch buffers from fftw_malloc (planning may overwrite its arrays).
    init(_ key: Key) throws(QSMError) {
        self.key = key
        let (nx, ny, nz) = (Int32(key.shape.x), Int32(key.shape.y), Int32(key.shape.z))
        let realCount = key.shape.x * key.shape.y * key.shape.z
        let complexCount = (key.shape.x / 2 + 1) * key.shape.y * key.shape.z
        let fullComplex = key.kind == .complexForward || key.kind == .complexBackward
        let inCount = fullComplex ? realCount : (key.kind == .realToComplex ? realCount : complexCount)
        var flags = key.planning.flags
        if !key.aligned { flags |= UInt32(FFTW_UNALIGNED) }
        var made: OpaquePointer?
        switch key.kind {
        case .planeRealToComplex, .planeComplexToReal, .columnsForward, .columnsBackward:
            precondition(key.precision == .single, "fused-filter plans are single precision")
            made = Self.fusedPlan(key, flags: flags)
            guard let made else { throw .library("FFTW", "could not plan a \(key.kind) transform of \(nx)×\(ny)×\(nz)") }
            plan = made
            return
        default: break
        }
        switch key.precision {
        case .single:
            let bytesIn = (fullComplex || key.kind == .complexToReal ? 2 : 1) * inCount * 4
            let bytesOut = 2 * (fullComplex ? realCount : complexCount) * 4
            let a = fftwf_malloc(max(bytesIn, bytesOut))!
            let b = key.inPlace ? a : fftwf_malloc(bytesOut)!
            defer { fftwf_free(a); if !key.inPlace { fftwf_free(b) } }
            fftwf_plan_with_nthreads(Int32(key.threads))
            switch key.kind {
            case .realToComplex:
                made = fftwf_plan_dft_r2c_3d(nz, ny, nx, a.assumingMemoryBound(to: Float.self),
                                             b.assumingMemoryBound(to: fftwf_complex.self), flags)
            case .complexToReal:
                made = fftwf_plan_dft_c2r_3d(nz, ny, nx, a.assumingMemoryBound(to: fftwf_complex.self),
                                             b.assumingMemoryBound(to: Float.self), flags)
            case .complexForward, .complexBackward:
                made = fftwf_plan_dft_3d(nz, ny, nx, a.assumingMemoryBound(to: fftwf_complex.self),
                                         b.assumingMemoryBound(to: fftwf_complex.self),
                                         key.kind == .complexForward ? FFTW_FORWARD : FFTW_BACKWARD, flags)
            default: break
            }
        case .double:
            let bytesIn = (fullComplex || key.kind == .complexToReal ? 2 : 1) * inCount * 8
            let bytesOut = 2 * (fullComplex ? realCount : complexCount) * 8
            let a = fftw_malloc(max(bytesIn, bytesOut))!
            let b = key.inPlace ? a : fftw_malloc(bytesOut)!
            defer { fftw_free(a); if !key.inPlace { fftw_free(b) } }
            fftw_plan_with_nthreads(Int32(key.threads))
            switch key.kind {
            case .realToComplex:
                made = fftw_plan_dft_r2c_3d(nz, ny, nx, a.assumingMemoryBound(to: Double.self),
                                            b.assumingMemoryBound(to: fftw_complex.self), flags)
            case .complexToReal:
                made = fftw_plan_dft_c2r_3d(nz, ny, nx, a.assumingMemoryBound(to: fftw_complex.self),
                                            b.assumingMemoryBound(to: Double.self), flags)
            case .complexForward, .complexBackward:
                made = fftw_plan_dft_3d(nz, ny, nx, a.assumingMemoryBound(to: fftw_complex.self),
                                        b.assumingMemoryBound(to: fftw_complex.self),
                                        key.kind == .complexForward ? FFTW_FORWARD : FFTW_BACKWARD, flags)
            default: break
            }
        }
        guard let made else {
            throw .library("FFTW", "could not plan a \(key.kind) transform of \(nx)×\(ny)×\(nz)")
        }
        plan = made
    }

    /// Plane and column plans (single-threaded: `FFT.filter` runs them from its own threads).
    private static func fusedPlan(_ key: Key, flags: UInt32) -> OpaquePointer? {
        let (nx, ny, nz) = (key.shape.x, key.shape.y, key.shape.z)
        fftwf_plan_with_nthreads(1)
        switch key.kind {
        case .planeRealToComplex, .planeComplexToReal:
            let real = fftwf_malloc(nx * ny * 4)!, half = fftwf_malloc((nx / 2 + 1) * ny * 8)!
            defer { fftwf_free(real); fftwf_free(half) }
            return key.kind == .planeRealToComplex
                ? fftwf_plan_dft_r2c_2d(Int32(ny), Int32(nx), real.assumingMemoryBound(to: Float.self),
                                        half.assumingMemoryBound(to: fftwf_complex.self), flags)
                : fftwf_plan_dft_c2r_2d(Int32(ny), Int32(nx), half.assumingMemoryBound(to: fftwf_complex.self),
                                        real.assumingMemoryBound(to: Float.self), flags)
        default:
            let batch = nx
            let data = fftwf_malloc(batch * nz * 8)!.assumingMemoryBound(to: fftwf_complex.self)
            defer { fftwf_free(data) }
            var length = Int32(nz)
            return fftwf_plan_many_dft(1, &length, Int32(batch), data, nil, Int32(batch), 1, data, nil, Int32(batch), 1,
                                       key.kind == .columnsForward ? FFTW_FORWARD : FFTW_BACKWARD, flags)
        }
    }

    deinit {
        switch key.precision {
        case .single: fftwf_destroy_plan(plan)
        case .double: fftw_destroy_plan(plan)
        }
    }

    /// Executes on new arrays; `input` and `output` must match the plan's kind and layout.
    func execute(_ input: UnsafeMutableRawPointer, _ output: UnsafeMutableRawPointer) {
        switch (key.precision, key.kind) {
        case (.single, .realToComplex), (.single, .planeRealToComplex):
            fftwf_execute_dft_r2c(plan, input.assumingMemoryBound(to: Float.self),
                                  output.assumingMemoryBound(to: fftwf_complex.self))
        case (.single, .complexToReal), (.single, .planeComplexToReal):
            fftwf_execute_dft_c2r(plan, input.assumingMemoryBound(to: fftwf_complex.self),
                                  output.assumingMemoryBound(to: Float.self))
        case (.single, _):
            fftwf_execute_dft(plan, input.assumingMemoryBound(to: fftwf_complex.self),
                              output.assumingMemoryBound(to: fftwf_complex.self))
        case (.double, .realToComplex), (.double, .planeRealToComplex):
            fftw_execute_dft_r2c(plan, input.assumingMemoryBound(to: Double.self),
                                 output.assumingMemoryBound(to: fftw_complex.self))
        case (.double, .complexToReal), (.double, .planeComplexToReal):
            fftw_execute_dft_c2r(plan, input.assumingMemoryBound(to: fftw_complex.self),
                                 output.assumingMemoryBound(to: Double.self))
        case (.double, _):
            fftw_execute_dft(plan, input.assumingMemoryBound(to: fftw_complex.self),
                             output.assumingMemoryBound(to: fftw_complex.self))
        }
    }

    /// Whether FFTW considers `pointer` SIMD-aligned like its own allocations.
    static func isAligned(_ pointer: UnsafeMutableRawPointer, _ precision: FFTPrecision) -> Bool {
        switch precision {
        case .single: return fftwf_alignment_of(pointer.assumingMemoryBound(to: Float.self)) == 0
        case .double: return fftw_alignment_of(pointer.assumingMemoryBound(to: Double.self)) == 0
        }
    }
}
