import QSMCore

/// out ← w_out·F⁻¹[K·F[w_in·x]] for a real kernel K (the dipole kernel D, a k-space mask, an SMV
/// high-pass), each application one fused sweep (`FFT.filter`).
///
/// K·(1/N) is kept block-ordered (`BlockOrder`), so the column pass streams it instead of a separate
/// pass over the spectrum; weights are applied as planes are loaded and stored, and planes where a
/// weight is zero are not transformed (`PlaneSupport`). The arithmetic per coefficient is that of a
/// forward FFT, `VoxelLoop.multiply(_:by:scale:)` (s·(K·(1/N))) and an inverse FFT; the weights'
/// that of a separate product pass.
struct SpectralFilter {
    let fft: FFT<Float>
    private let blocks: [Float]
    private let capacity: Int

    /// F⁻¹DF on an inversion grid (its dipole kernel).
    init(dipoleOf grid: InversionGrid) { self.init(fft: grid.fft, kernel: grid.dipole) }

    /// F⁻¹KF for transforms `fft`, K given on the half spectrum (natural order).
    init(fft: FFT<Float>, kernel: [Float]) {
        precondition(kernel.count == fft.halfCount)
        self.fft = fft
        let depth = fft.shape.z, planeCount = (fft.shape.x / 2 + 1) * fft.shape.y
        let width = FFT<Float>.columnBlock, scale = 1 / Float(fft.count)
        let capacity = BlockOrder.capacity(halfCount: fft.halfCount, depth: depth)
        self.capacity = capacity
        blocks = kernel.withUnsafeBufferPointer { db in
            let d = ReadPointer(db.baseAddress!)
            return uninitializedArray(count: capacity) { out in
                parallelFor(0..<((planeCount + width - 1) / width)) { range in
                    for block in range {
                        let first = block * width, count = min(width, planeCount - first)
                        for z in 0..<depth {
                            let at = first * depth + z * width
                            for q in 0..<count { out[at + q] = d[first + q + planeCount * z] * scale }
                        }
                    }
                }
            }
        }
    }

    /// The planes where `weight` (a volume of the transforms' shape) is nonzero: pass as
    /// `inputPlanes` or `outputPlanes` with that weight.
    func planes(of weight: [Float]) -> PlaneSupport {
        weight.withUnsafeBufferPointer { PlaneSupport(nonzeroIn: $0, planeSize: fft.shape.x * fft.shape.y) }
    }

    /// out ← outputWeight·F⁻¹[D·F[inputWeight·x]] (a nil weight is 1). x must be zero outside
    /// `inputPlanes` (given: those planes are not loaded); planes outside `outputPlanes` (given) are
    /// not transformed back and are zero in `out`. `spectrum` (half-spectrum size) is scratch.
    func apply(_ x: [Float], into out: inout [Float], spectrum: inout [Complex<Float>],
               inputWeight: [Float]? = nil, outputWeight: [Float]? = nil,
               inputPlanes: PlaneSupport? = nil, outputPlanes: PlaneSupport? = nil) {
        let planeSize = fft.shape.x * fft.shape.y, capacity = capacity, fft = fft
        precondition(x.count == fft.count && out.count == fft.count)
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { ob in
            blocks.withUnsafeBufferPointer { kb in spectrum.withUnsafeMutableBufferPointer { sb in
                let source = ReadPointer(xb.baseAddress!), target = SendablePointer(ob.baseAddress!), kernel = ReadPointer(kb.baseAddress!)
                func run(_ win: ReadPointer<Float>?, _ wout: ReadPointer<Float>?) {
                    fft.filter(spectrum: sb, normalized: false, inputPlanes: inputPlanes, outputPlanes: outputPlanes, load: { z, plane in
                        let offset = z * planeSize, p = plane.baseAddress!
                        if let win {
                            for i in 0..<planeSize { p[i] = source[offset + i] * win[offset + i] }
                        } else {
                            p.update(from: source.base + offset, count: planeSize)
                        }
                    }, product: { columns in
                        let base = BlockOrder.base(columns, capacity: capacity)
                        for z in 0..<columns.depth {
                            let row = columns.values + z * columns.stride, k = kernel.base + base + z * columns.stride
                            for q in 0..<columns.count { let v = row[q], d = k[q]; row[q] = Complex(v.real * d, v.imaginary * d) }
                        }
                    }, store: { z, plane in
                        let offset = z * planeSize, p = plane.baseAddress!
                        if let wout {
                            for i in 0..<planeSize { target[offset + i] = p[i] * wout[offset + i] }
                        } else {
                            (target.base + offset).update(from: p, count: planeSize)
                        }
                    })
                    outputPlanes?.zeroPlanesOutside(target.base, planeSize: planeSize, depth: fft.shape.z)
                }
                func withWeight(_ w: [Float]?, _ body: (ReadPointer<Float>?) -> Void) {
                    guard let w else { body(nil); return }
                    precondition(w.count == fft.count)
                    w.withUnsafeBufferPointer { body(ReadPointer($0.baseAddress!)) }
                }
                withWeight(inputWeight) { win in withWeight(outputWeight) { wout in run(win, wout) } }
            } }
        } }
    }
}
