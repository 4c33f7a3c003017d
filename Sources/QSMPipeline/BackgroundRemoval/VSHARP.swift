import QSMCore

/// Variable-radius SHARP: each voxel gets the largest ball that fits in the mask, then one TSVD
/// deconvolution with the largest kernel.
///
/// Wu B, Li W, Guidon A, Liu C. Whole brain susceptibility mapping using compressed sensing. MRM
/// 2012;67:137–147. doi:10.1002/mrm.23000. Follows QSM.jl `vsharp` (QSM.md §6.2): radii from
/// `maxRadius` down to `minRadius` in steps of `radiusStep`; voxels of erode(M, r) not yet assigned
/// take g = (δ − s_r) ⊛ Δb; Δb_local = M_rmin·F⁻¹[F[g]·T(1 − Ŝ_rmax)].
/// FFTs: 4 + 3 per radius (kernel, erosion, high-pass), computed in fused sweeps (`FFT.filter`):
/// per radius, the ball's transform and the erosion in one sweep, the high-pass in a second whose
/// output planes assign g directly; the deconvolution with the masked, cropped output in a third.
public struct VSHARP: BackgroundRemoval {
    /// V-SHARP's parameters.
    public struct Parameters: MethodParameters {
        /// Largest SMV radius, mm. Default: QSM.jl `vsharp` uses 18 × the smallest voxel size.
        public var maxRadius = 18.0
        /// Smallest SMV radius, mm, ≤ maxRadius. Default: QSM.jl uses 2 × the largest voxel size.
        public var minRadius = 2.0
        /// Step between radii, mm. Default: QSM.jl steps by 2 × the largest voxel size.
        public var radiusStep = 2.0
        /// TSVD threshold on |1 − Ŝ_rmax| in (0, 1). Default: QSM.jl `vsharp`, QSM.rs `VsharpParams`.
        public var threshold = 0.05
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("maxRadius", \.maxRadius, in: .positive, "Largest SMV radius, mm. Default: QSM.jl vsharp at 1 mm voxels."),
             .real("minRadius", \.minRadius, in: .positive, "Smallest SMV radius, mm (sets the erosion). Default: QSM.jl vsharp at 1 mm voxels."),
             .real("radiusStep", \.radiusStep, in: .positive, "Step between radii, mm. Default: QSM.jl vsharp at 1 mm voxels."),
             .real("threshold", \.threshold, in: .openUnit,
                   "TSVD threshold on |1 − Ŝ| of the largest kernel. Default: QSM.jl vsharp, QSM.rs VsharpParams.")]
        }
        public func relationProblem() -> (parameter: String, problem: String)? {
            if minRadius > maxRadius { return ("minRadius", "\(minRadius) mm exceeds maxRadius (\(maxRadius) mm)") }
            if (maxRadius - minRadius) / radiusStep > 200 { return ("radiusStep", "\(radiusStep) mm gives more than 200 radii") }
            return nil
        }
        /// The radii, largest first.
        var radii: [Double] {
            var out: [Double] = []
            var r = maxRadius
            while r >= minRadius - 1e-9 { out.append(r); r -= radiusStep }
            return out
        }
    }

    public static let name = "vsharp"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "Variable-radius SHARP (Wu et al. 2012)"
    public var parameters: Parameters
    /// V-SHARP with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) inside the mask eroded by the smallest radius.
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        let radii = parameters.radii
        let domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: radii[0])
        let s = domain.spectral, fft = s.fft, padding = domain.padding, grid = domain.grid
        let scale = s.normalization, capacity = BlockOrder.capacity(s)
        func uninitialized<T>(_ count: Int) -> [T] { [T](unsafeUninitializedCapacity: count) { _, n in n = count } }
        var fieldSpectrum: [Complex<Float>] = uninitialized(s.halfCount), spectrum: [Complex<Float>] = uninitialized(s.halfCount)
        domain.forwardField(into: &fieldSpectrum)
        // Block-ordered (see `BlockOrder`): F[M], copied by the first sweep and read by the others;
        // Ŝ of the current radius and of the largest (kept for the deconvolution).
        var maskBlocks: [Complex<Float>] = uninitialized(capacity)
        var kernel: [Float] = uninitialized(capacity), largestKernel: [Float] = uninitialized(capacity)
        // On the original grid: the index of the radius that assigned each voxel (none: `unassigned`),
        // and g, the high-passed field of that radius. The erosions lie inside the mask, hence inside
        // the original grid, so nothing of the padding margin is kept.
        let unassigned = UInt8.max
        var state = [UInt8](repeating: unassigned, count: grid.count)
        var g = VoxelLoop.zeros(grid.count)
        for (index, radius) in radii.enumerated() {
            let ball = try SMVKernel.Ball(radius: radius, voxelSize: grid.voxelSize, shape: s.shape,
                                          parameter: index == 0 ? "bgremove.maxRadius" : "bgremove.minRadius")
            let cut = ball.erosionCut, tag = UInt8(index)
            state.withUnsafeMutableBufferPointer { stateBuffer in
                let st = SendablePointer(stateBuffer.baseAddress!)
                // Sweep 1 (ball transform, erosion): voxels of erode(M, r) not yet assigned take this radius.
                kernel.withUnsafeMutableBufferPointer { kb in maskBlocks.withUnsafeMutableBufferPointer { bb in
                    let blocks = SendablePointer(bb.baseAddress!)
                    let source: SMVDomain.MaskSource = index == 0 ? .copying(blocks) : .blockOrdered(ReadPointer(blocks.base))
                    domain.smoothMask(ball: ball, kernel: SendablePointer(kb.baseAddress!), mask: source, spectrum: &spectrum) { first, values, count in
                        for j in 0..<count where values[j] > cut && st[first + j] == unassigned { st[first + j] = tag }
                    }
                } }
                // Sweep 2: F⁻¹[(1 − Ŝ_r)·F[M·Δb]], kept only where this radius assigned the voxel.
                fieldSpectrum.withUnsafeBufferPointer { fb in spectrum.withUnsafeMutableBufferPointer { sb in
                    kernel.withUnsafeBufferPointer { kb in g.withUnsafeMutableBufferPointer { gb in
                        let k = ReadPointer(kb.baseAddress!), gp = SendablePointer(gb.baseAddress!)
                        fft.inverse(fb, scratch: sb, normalized: false, product: { columns in
                            SMVDomain.multiply(columns, kernel: k, capacity: capacity, scale: scale) { 1 - $0 }
                        }, store: { z, plane in
                            padding.storePlane(z, plane) { i, v in if st[i] == tag { gp[i] = v } }
                        })
                    } }
                } }
            }
            if index == 0 { swap(&kernel, &largestKernel) }
        }
        // Δb_local = M_rmin·F⁻¹[F[g]·T(1 − Ŝ_rmax)], the truncated inverse evaluated in the product (2 FFTs).
        let threshold = Float(parameters.threshold)
        let valid = VoxelLoop.generateFlags(count: grid.count) { [state] in state[$0] != unassigned }
        let local = [Float](unsafeUninitializedCapacity: grid.count) { out, n in
            let o = SendablePointer(out.baseAddress!)
            g.withUnsafeBufferPointer { gb in valid.withUnsafeBufferPointer { vb in largestKernel.withUnsafeBufferPointer { kb in
                let gp = ReadPointer(gb.baseAddress!), m = ReadPointer(vb.baseAddress!), k = ReadPointer(kb.baseAddress!)
                spectrum.withUnsafeMutableBufferPointer { sb in
                    fft.filter(spectrum: sb, normalized: false, load: { z, plane in
                        padding.loadPlane(z, plane) { gp[$0] }
                    }, product: { columns in
                        SMVDomain.multiply(columns, kernel: k, capacity: capacity, scale: scale) { kernelValue in
                            let c = 1 - kernelValue
                            return abs(c) >= threshold ? 1 / c : 0
                        }
                    }, store: { z, plane in
                        padding.storePlane(z, plane) { i, v in o[i] = m[i] ? v : 0 }
                    })
                }
            } } }
            n = grid.count
        }
        return try SMVDomain.localField(grid: grid, field: local, valid: valid, stage: "bgremove.minRadius")
    }
}
