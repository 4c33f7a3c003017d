import RealModule

extension Double: FFTScalar {
    /// `fftw_*`.
    public static var fftPrecision: FFTPrecision { .double }
}
