// Complex<T> and Real appear in QSMCore's public API (FFT spectra, FFTScalar).
@_exported import ComplexModule
@_exported import RealModule
