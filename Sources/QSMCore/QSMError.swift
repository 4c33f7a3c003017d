/// The one error type of qsmbench: a subject (file, option or parameter) and what is wrong with it.
///
/// `description` is the single line the CLI prints after `error: `; `exitCode` is 2 for unusable
/// input and 1 for a failed check (see shared CLI contract).
public enum QSMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file that cannot be used: missing, truncated, corrupt, or of the wrong kind.
    case invalidFile(_ path: String, _ problem: String)
    /// A command-line option or configuration key with an unusable value.
    case invalidOption(_ option: String, _ problem: String)
    /// A method parameter (`stage.parameter`) outside its valid range.
    case invalidParameter(_ name: String, _ problem: String)
    /// Inputs that do not fit together (shapes, affines, units).
    case mismatch(_ subject: String, _ problem: String)
    /// A failure inside a C library (FFTW, HDF5, zlib) that is not the input's fault.
    case library(_ name: String, _ problem: String)
    /// A check that ran and failed (regression gate, validation); exit code 1.
    case checkFailed(_ subject: String, _ problem: String)

    /// The one-line message, `<subject>: <problem>`.
    public var description: String {
        switch self {
        case let .invalidFile(s, p), let .invalidOption(s, p), let .invalidParameter(s, p),
             let .mismatch(s, p), let .library(s, p), let .checkFailed(s, p):
            return "\(s): \(p)"
        }
    }

    /// The process exit status this error should produce.
    public var exitCode: Int32 {
        if case .checkFailed = self { return 1 }
        return 2
    }

    /// The same error with its subject replaced (e.g. a reader's error re-labelled with a file name).
    public func withSubject(_ subject: String) -> QSMError {
        switch self {
        case let .invalidFile(_, p): return .invalidFile(subject, p)
        case let .invalidOption(_, p): return .invalidOption(subject, p)
        case let .invalidParameter(_, p): return .invalidParameter(subject, p)
        case let .mismatch(_, p): return .mismatch(subject, p)
        case let .library(_, p): return .library(subject, p)
        case let .checkFailed(_, p): return .checkFailed(subject, p)
        }
    }
}
