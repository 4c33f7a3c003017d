import RealModule

/// Which FFTW library a scalar type maps onto.
public enum FFTPrecision: String, Sendable, Codable {
    /// `fftwf_*` (Float).
    case single
    /// `fftw_*` (Double).
    case double
}

/// A real scalar with an FFTW library behind it (Float or Double).
///
/// Generic numerical code is written against this protocol; `Float+FFTScalar.swift` and
/// `Double+FFTScalar.swift` map each type onto its library.
public protocol FFTScalar: BinaryFloatingPoint, Real, Sendable, Codable {
    /// The FFTW precision for this type.
    static var fftPrecision: FFTPrecision { get }
}
