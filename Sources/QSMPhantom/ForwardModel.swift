import QSMCore

/// χ (ppm) → field perturbation along B0 (ppm) by dipole convolution in k-space.
///
/// Δb = F⁻¹[D(k)·F[χ]], D(k) = 1/3 − (k·b̂)²/|k|² on physical k (QSM.md §2.1). Salomir R,
/// de Senneville BD, Moonen CT. Concepts Magn Reson B 2003;19B:26–34. doi:10.1002/cmr.b.10083.
/// Marques JP, Bowtell R. Concepts Magn Reson B 2005;25B:65–78. doi:10.1002/cmr.b.20034.
///
/// The DFT convolves circularly, so χ is zero-padded to `paddingFactor`·N per axis (then up to a
/// fast FFT length) and the field is cropped back (QSM.md §2.5). Padding uses the value of χ at
/// the first corner voxel, as qsm-forward does, so a uniform surround (air around a head) stays
/// uniform instead of ending in a box of tissue: internally χ − c is padded with zeros and
/// D(0)·c is added back, which is the same thing because D(k) is zero-mean off k = 0.
public struct ForwardModel: Sendable, Hashable {
    /// B0 direction in voxel axes (normalised before use); see `Grid.b0Direction(world:)`.
    public var b0Direction: SIMD3<Double>
    /// The value of D at k = 0 (QSM.md §2.2): `.zero` gives a field with zero mean over the padded box.
    public var dipoleDC: DipoleDC
    /// Padded size ÷ matrix size per axis, ≥ 1 (default 2, as qsm-forward; 1 = periodic along that axis).
    public var paddingFactor: SIMD3<Double>
    /// FFT precision. Single precision keeps relative round-off near 1e-6 of the largest field,
    /// below every tolerance the benchmarks use; double precision is for oracle tests and for
    /// χ maps whose surround (air, +9.4 ppm) is 10³× larger than the tissue contrast of interest.
    public var precision: FFTPrecision

    /// A forward model; defaults: B0 along the third voxel axis, D(0) = 0, 2× padding, single precision.
    public init(b0Direction: SIMD3<Double> = SIMD3(0, 0, 1), dipoleDC: DipoleDC = .zero,
                paddingFactor: SIMD3<Double> = SIMD3(repeating: 2), precision: FFTPrecision = .single) {
        self.b0Direction = b0Direction
        self.dipoleDC = dipoleDC
        self.paddingFactor = paddingFactor
        self.precision = precision
    }

    /// The FFT shape used for a matrix of `shape`.
    public func paddedShape(for shape: SIMD3<Int>) -> SIMD3<Int> {
        SIMD3((0..<3).map { axis in
            let target = Int((Double(shape[axis]) * paddingFactor[axis]).rounded(.up))
            // Padding by fewer voxels than the factor asks for would re-introduce wrap-around.
            return target <= shape[axis] ? shape[axis] : FFTSize.fastLength(atLeast: target)
        })
    }

    /// The field (ppm) of χ (ppm) on the same grid.
    public func field(of chi: Volume<Float>) throws(QSMError) -> Volume<Float> {
        try fields(of: [chi])[0]
    }

    /// The fields (ppm) of several χ maps (ppm) on one grid, sharing one kernel and one set of buffers.
    public func fields(of sources: [Volume<Float>]) throws(QSMError) -> [Volume<Float>] {
        guard let first = sources.first else { return [] }
        try validate(grid: first.grid)
        for (i, source) in sources.enumerated() {
            try first.grid.requireMatches(source.grid, "source 1", "source \(i + 1)")
            guard source.frames == 1 else {
                throw .invalidParameter("forward model", "source \(i + 1) has \(source.frames) frames; expected one 3-D χ map")
            }
            if let bad = source.firstNonFinite {
                throw .invalidParameter("forward model", "χ is not finite at voxel \(bad)")
            }
        }
        switch precision {
        case .single: return try compute(sources, as: Float.self)
        case .double: return try compute(sources, as: Double.self)
        }
    }

    /// Throws unless the model can run on `grid`.
    public func validate(grid: Grid) throws(QSMError) {
        let norm = (b0Direction * b0Direction).sum().squareRoot()
        guard norm.isFinite, norm > 0 else {
            throw .invalidParameter("forward.b0Direction", "\(b0Direction) is not a non-zero finite vector")
        }
        guard (0..<3).allSatisfy({ paddingFactor[$0].isFinite && paddingFactor[$0] >= 1 && paddingFactor[$0] <= 8 }) else {
            throw .invalidParameter("forward.paddingFactor", "\(paddingFactor) must lie in [1, 8] on every axis")
        }
        guard all(grid.voxelSize .> 0), (0..<3).allSatisfy({ grid.voxelSize[$0].isFinite }) else {
            throw .invalidParameter("forward model", "voxel size \(grid.voxelSize) must be positive")
        }
    }

    // MARK: - Implementation details

    /// Replaces D on the Nyquist planes of even axes by its mean over both signs of the Nyquist
    /// frequency.
    ///
    /// On an even grid +K/2 and −K/2 are one sample; `fftfreq` calls it −K/2, which makes D(k) odd in
    /// the cross terms kᵢbⱼ there whenever b̂ is oblique. The real-space kernel is then not even, the
    /// field of a sphere loses its symmetry (1.8 % error at R = 8 voxels with b̂ ∥ (1, 0, 1), against
    /// 0.2 % with b̂ ∥ z) and rotating object and B0 together no longer commutes with the simulation.
    /// The mean is the value both signs agree on, and leaves every other frequency untouched. It is also
    /// what numpy's `real(ifftn(fftn(χ)·D))` does implicitly on single Nyquist planes (qsm-forward);
    /// without it c2r silently assumes a Hermitian half spectrum that D does not have there (2 % field
    /// difference from qsm-forward for an oblique B0, 0.2 % with it).
    static func symmetrizeNyquist<T: FFTScalar>(_ kernel: inout [T], shape: SIMD3<Int>, voxelSize: SIMD3<Double>,
                                                b0Direction: SIMD3<Double>) {
        let b = b0Direction / (b0Direction * b0Direction).sum().squareRoot()
        let hx = shape.x / 2 + 1
        let kx = KSpace.halfFrequencies(count: shape.x, spacing: voxelSize.x)
        let ky = KSpace.frequencies(count: shape.y, spacing: voxelSize.y)
        let kz = KSpace.frequencies(count: shape.z, spacing: voxelSize.z)
        let nyquist = SIMD3(shape.x % 2 == 0 ? shape.x / 2 : -1, shape.y % 2 == 0 ? shape.y / 2 : -1,
                            shape.z % 2 == 0 ? shape.z / 2 : -1)
        func value(_ k: SIMD3<Double>) -> Double {
            let k2 = (k * k).sum()
            let kb = (k * b).sum()
            return 1.0 / 3 - kb * kb / k2
        }
        for z in 0..<shape.z {
            for y in 0..<shape.y {
                for x in 0..<hx where x == nyquist.x || y == nyquist.y || z == nyquist.z {
                    let k = SIMD3(kx[x], ky[y], kz[z])
                    let flips = SIMD3(x == nyquist.x ? 2 : 1, y == nyquist.y ? 2 : 1, z == nyquist.z ? 2 : 1)
                    var sum = 0.0, count = 0
                    for fz in 0..<flips.z { for fy in 0..<flips.y { for fx in 0..<flips.x {
                        let sign = SIMD3<Double>(fx == 0 ? 1 : -1, fy == 0 ? 1 : -1, fz == 0 ? 1 : -1)
                        sum += value(k * sign); count += 1
                    } } }
                    kernel[x + hx * (y + shape.y * z)] = T(sum / Double(count))
                }
            }
        }
    }

    private func compute<T: FFTScalar>(_ sources: [Volume<Float>], as _: T.Type) throws(QSMError) -> [Volume<Float>] {
        let grid = sources[0].grid
        let n = grid.shape
        let padded = paddedShape(for: n)
        let offset = (padded &- n) / 2
        let fft = try FFT<T>(shape: padded)
        var kernel = DipoleKernel.halfSpectrum(shape: padded, voxelSize: grid.voxelSize,
                                               b0Direction: b0Direction, dc: dipoleDC, as: T.self)
        Self.symmetrizeNyquist(&kernel, shape: padded, voxelSize: grid.voxelSize, b0Direction: b0Direction)
        var real = [T](repeating: 0, count: fft.count)
        var spectrum = [Complex<T>](repeating: .zero, count: fft.halfCount)
        var results: [Volume<Float>] = []
        for source in sources {
            let surround = source.voxels[0]
            // Place χ − c in a zero box; every voxel outside the box is rewritten each time.
            real.withUnsafeMutableBufferPointer { buffer in
                let out = SendablePointer(buffer.baseAddress!)
                source.withVoxels { input in
                    let chi = SendablePointer(UnsafeMutablePointer(mutating: input.baseAddress!))
                    parallelFor(0..<padded.z) { zs in
                        for z in zs {
                            for y in 0..<padded.y {
                                let row = padded.x * (y + padded.y * z)
                                let sy = y - offset.y, sz = z - offset.z
                                let inside = sy >= 0 && sy < n.y && sz >= 0 && sz < n.z
                                for x in 0..<padded.x {
                                    let sx = x - offset.x
                                    if inside && sx >= 0 && sx < n.x {
                                        out[row + x] = T(chi[sx + n.x * (sy + n.y * sz)] - surround)
                                    } else {
                                        out[row + x] = 0
                                    }
                                }
                            }
                        }
                    }
                }
            }
            real.withUnsafeBufferPointer { i in spectrum.withUnsafeMutableBufferPointer { fft.forward(i, into: $0) } }
            spectrum.withUnsafeMutableBufferPointer { s in
                let p = SendablePointer(s.baseAddress!)
                kernel.withUnsafeBufferPointer { k in
                    let d = SendablePointer(UnsafeMutablePointer(mutating: k.baseAddress!))
                    parallelFor(0..<s.count) { range in for i in range { p[i] = Complex(p[i].real * d[i], p[i].imaginary * d[i]) } }
                }
            }
            spectrum.withUnsafeMutableBufferPointer { s in real.withUnsafeMutableBufferPointer { fft.inverse(s, into: $0) } }
            let constant = T(dipoleDC.value) * T(surround)
            var field = Volume<Float>(zeros: grid)
            field.withMutableVoxels { output in
                let out = SendablePointer(output.baseAddress!)
                real.withUnsafeBufferPointer { buffer in
                    let src = SendablePointer(UnsafeMutablePointer(mutating: buffer.baseAddress!))
                    parallelFor(0..<n.z) { zs in
                        for z in zs {
                            for y in 0..<n.y {
                                let from = offset.x + padded.x * (y + offset.y + padded.y * (z + offset.z))
                                let to = n.x * (y + n.y * z)
                                for x in 0..<n.x { out[to + x] = Float(src[from + x] + constant) }
                            }
                        }
                    }
                }
            }
            results.append(field)
        }
        return results
    }
}
