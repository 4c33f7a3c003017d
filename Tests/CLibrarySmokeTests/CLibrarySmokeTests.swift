import CFFTW
import CHDF5
import CZlib
import Testing

/// Each C library links, runs, and answers correctly through its raw API.
@Suite struct CLibrarySmokeTests {
    @Test func fftwTransformsAnImpulse() {
        // The DFT of a unit impulse at index 0 is 1 at every frequency.
        let n: Int32 = 8
        let input = fftw_alloc_complex(Int(n))!, output = fftw_alloc_complex(Int(n))!
        defer { fftw_free(input); fftw_free(output) }
        let plan = fftw_plan_dft_1d(n, input, output, FFTW_FORWARD, UInt32(FFTW_ESTIMATE))!
        defer { fftw_destroy_plan(plan) }
        for i in 0..<Int(n) { input[i] = (i == 0 ? 1 : 0, 0) }
        fftw_execute(plan)
        for i in 0..<Int(n) { #expect(output[i].0 == 1 && output[i].1 == 0) }
    }

    @Test func fftwSinglePrecisionLinks() {
        let plan = fftwf_plan_dft_r2c_1d(4, nil, nil, UInt32(FFTW_ESTIMATE))
        #expect(plan != nil)
        if let plan { fftwf_destroy_plan(plan) }
    }

    @Test func hdf5ReportsItsVersion() {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        #expect(H5get_libversion(&major, &minor, &release) >= 0)
        #expect(major == 1 && minor >= 10)
        #expect(chdf5_T_NATIVE_FLOAT() > 0)
    }

    @Test func zlibRoundTripsBytes() {
        var source = Array("qsmbench zlib smoke test, repeated repeated repeated".utf8)
        var compressed = [UInt8](repeating: 0, count: 256)
        var compressedLength = uLongf(compressed.count)
        #expect(compress(&compressed, &compressedLength, &source, uLong(source.count)) == Z_OK)
        var restored = [UInt8](repeating: 0, count: source.count)
        var restoredLength = uLongf(restored.count)
        #expect(uncompress(&restored, &restoredLength, compressed, compressedLength) == Z_OK)
        #expect(restored == source)
    }
}
