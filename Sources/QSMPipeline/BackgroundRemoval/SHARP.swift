import QSMCore

/// Sophisticated harmonic artifact reduction for phase data: SMV high-pass, then TSVD deconvolution.
///
/// Schweser F, Deistung A, Lehr BW, Reichenbach JR. Quantitative imaging of intrinsic magnetic
/// tissue properties using MRI signal phase: an approach to in vivo brain iron metabolism?
/// NeuroImage 2011;54:2789–2807. doi:10.1016/j.neuroimage.2010.10.070. Equations of QSM.md §6.1:
/// M_r = erode(M, r); g = M_r·F⁻¹[(1 − Ŝ_r)F[M·Δb]]; Δb_local = M_r·F⁻¹[F[g]·T(1 − Ŝ_r)].
/// 7 FFTs (mask 1, kernel 1, erosion 1, high-pass 2, deconvolution 2) in four fused sweeps
/// (`FFT.filter`): the ball's transform with the erosion, the high-pass and the deconvolution each
/// with their masked input and output planes.
public struct SHARP: BackgroundRemoval {
    /// SHARP's parameters.
    public struct Parameters: MethodParameters {
        /// SMV radius in mm, > 0 and at least one voxel. Default from QSM.rs `SharpParams`
        /// (QSM.jl uses 18 × the smallest voxel size; QSM.md §6.1).
        public var radius = 6.0
        /// TSVD threshold on |1 − Ŝ_r| in (0, 1). Default: QSM.jl `sharp`, QSM.rs `SharpParams`.
        public var threshold = 0.05
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("radius", \.radius, in: .positive, "SMV radius, mm. Default: QSM.rs SharpParams."),
             .real("threshold", \.threshold, in: .openUnit,
                   "TSVD threshold on |1 − Ŝ|. Default: QSM.jl sharp, QSM.rs SharpParams.")]
        }
    }

    public static let name = "sharp"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "SMV high-pass + TSVD deconvolution (Schweser et al. 2011)"
    public var parameters: Parameters
    /// SHARP with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) inside the mask eroded by the radius.
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        let domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: parameters.radius)
        let s = domain.spectral, fft = s.fft, padding = domain.padding, grid = domain.grid
        let scale = s.normalization, capacity = BlockOrder.capacity(s), threshold = Float(parameters.threshold)
        let ball = try SMVKernel.Ball(radius: parameters.radius, voxelSize: grid.voxelSize, shape: s.shape, parameter: "bgremove.radius")
        var spectrum = [Complex<Float>](unsafeUninitializedCapacity: s.halfCount) { _, n in n = s.halfCount }
        // Ŝ, block-ordered (see `BlockOrder`), written by the sweep that erodes the mask.
        var kernel = [Float](unsafeUninitializedCapacity: capacity) { _, n in n = capacity }
        // M_r = erode(M, r) on the original grid.
        let cut = ball.erosionCut
        var eroded = [Bool](repeating: false, count: grid.count)
        eroded.withUnsafeMutableBufferPointer { eb in kernel.withUnsafeMutableBufferPointer { kb in
            let e = SendablePointer(eb.baseAddress!)
            domain.smoothMask(ball: ball, kernel: SendablePointer(kb.baseAddress!), mask: .natural, spectrum: &spectrum) { first, values, count in
                for j in 0..<count { e[first + j] = values[j] > cut }
            }
        } }
        // g = M_r·F⁻¹[(1 − Ŝ)F[M·Δb]] with the masked input and output inside the sweep, then the
        // TSVD deconvolution of g, its output masked and cropped as its planes are written.
        let g = [Float](unsafeUninitializedCapacity: grid.count) { gb, n in
            let gp = SendablePointer(gb.baseAddress!)
            eroded.withUnsafeBufferPointer { eb in kernel.withUnsafeBufferPointer { kb in
                let e = ReadPointer(eb.baseAddress!), k = ReadPointer(kb.baseAddress!)
                domain.withInput { m, f in
                    spectrum.withUnsafeMutableBufferPointer { sb in
                        fft.filter(spectrum: sb, normalized: false, load: { z, plane in
                            padding.loadPlane(z, plane) { m[$0] ? f[$0] : 0 }
                        }, product: { columns in
                            SMVDomain.multiply(columns, kernel: k, capacity: capacity, scale: scale) { 1 - $0 }
                        }, store: { z, plane in
                            padding.storePlane(z, plane) { i, v in gp[i] = e[i] ? v : 0 }
                        })
                    }
                }
            } }
            n = grid.count
        }
        let local = [Float](unsafeUninitializedCapacity: grid.count) { lb, n in
            let lp = SendablePointer(lb.baseAddress!)
            eroded.withUnsafeBufferPointer { eb in g.withUnsafeBufferPointer { gb in kernel.withUnsafeBufferPointer { kb in
                let e = ReadPointer(eb.baseAddress!), gr = ReadPointer(gb.baseAddress!), k = ReadPointer(kb.baseAddress!)
                spectrum.withUnsafeMutableBufferPointer { sb in
                    fft.filter(spectrum: sb, normalized: false, load: { z, plane in
                        padding.loadPlane(z, plane) { gr[$0] }
                    }, product: { columns in
                        SMVDomain.multiply(columns, kernel: k, capacity: capacity, scale: scale) { kernelValue in
                            let c = 1 - kernelValue
                            return abs(c) >= threshold ? 1 / c : 0
                        }
                    }, store: { z, plane in
                        padding.storePlane(z, plane) { i, v in lp[i] = e[i] ? v : 0 }
                    })
                }
            } } }
            n = grid.count
        }
        return try SMVDomain.localField(grid: grid, field: local, valid: eroded, stage: "bgremove.radius")
    }
}
