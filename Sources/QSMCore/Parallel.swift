import Dispatch
import Synchronization

/// Thread count used by FFTs and parallel loops (default: all cores; `SLURM_CPUS_PER_TASK` wins).
public enum Parallelism {
    private static let storage = Atomic<Int>(defaultThreadCount())

    @TaskLocal static var scoped: Int?

    /// Number of threads; set it before heavy work starts (FFT plans are made with this count).
    public static var threadCount: Int {
        get { scoped ?? storage.load(ordering: .relaxed) }
        set { storage.store(max(1, newValue), ordering: .relaxed) }
    }

    /// Runs `body` with `count` threads for FFTs and loops started from this task, leaving the
    /// process-wide setting (and other tasks, e.g. concurrent tests) alone.
    public static func withThreadCount<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(max(1, count), operation: body)
    }

    static func defaultThreadCount() -> Int {
        if let text = getEnvironment("SLURM_CPUS_PER_TASK"), let n = Int(text), n > 0 { return n }
        return max(1, activeProcessorCount())
    }
}

/// Runs `body` over `range` split into contiguous chunks, on up to `Parallelism.threadCount` threads.
///
/// Chunk boundaries depend only on `range` and `chunks` (not on timing), so reductions that
/// combine per-chunk results in chunk order are deterministic for a given thread count; pass a
/// fixed `chunks` for results independent of the thread count.
public func parallelFor(
    _ range: Range<Int>, chunks: Int? = nil, _ body: @Sendable (Range<Int>) -> Void
) {
    let n = range.count
    guard n > 0 else { return }
    let parts = max(1, min(n, chunks ?? Parallelism.threadCount))
    if parts == 1 || Parallelism.threadCount == 1 && chunks == nil { body(range); return }
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let lo = range.lowerBound + n * p / parts
        let hi = range.lowerBound + n * (p + 1) / parts
        if lo < hi { body(lo..<hi) }
    }
}

/// A pointer that may cross into `parallelFor` bodies; callers guarantee disjoint writes.
public struct SendablePointer<Element>: @unchecked Sendable {
    /// The wrapped pointer.
    public let base: UnsafeMutablePointer<Element>
    /// Wraps `base`.
    public init(_ base: UnsafeMutablePointer<Element>) { self.base = base }
    /// Element at `index`.
    @inlinable public subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }
}
