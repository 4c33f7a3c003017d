import CFFTW
import Synchronization

/// The process-wide store of FFTW plans: one plan per shape × kind × precision × layout × threads.
///
/// FFTW's planner is not thread-safe, so planning happens under one lock (and FFTW's own
/// thread-safety hook is installed as well); executing cached plans needs no lock.
final class FFTPlanCache: Sendable {
    static let shared = FFTPlanCache()

    private let plans = Mutex<[FFTPlan.Key: FFTPlan]>([:])

    private init() {
        fftw_init_threads()
        fftwf_init_threads()
        fftw_make_planner_thread_safe()
        fftwf_make_planner_thread_safe()
    }

    func plan(_ key: FFTPlan.Key) throws(QSMError) -> FFTPlan {
        let result: Result<FFTPlan, QSMError> = plans.withLock { plans in
            if let plan = plans[key] { return .success(plan) }
            do throws(QSMError) {
                let plan = try FFTPlan(key)
                plans[key] = plan
                return .success(plan)
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Number of cached plans for transforms of `shape`.
    func count(shape: SIMD3<Int>) -> Int { plans.withLock { $0.keys.filter { $0.shape == shape }.count } }

    /// Destroys every cached plan.
    func removeAll() { plans.withLock { $0.removeAll() } }
}
