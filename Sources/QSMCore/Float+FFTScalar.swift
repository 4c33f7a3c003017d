import RealModule

extension Float: FFTScalar {
    /// `fftwf_*`.
    public static var fftPrecision: FFTPrecision { .single }
}
