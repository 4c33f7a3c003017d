import QSMCore

/// Variable-radius SHARP: each voxel gets the largest ball that fits in the mask, then one TSVD
/// deconvolution with the largest kernel.
///
/// Wu B, Li W, Guidon A, Liu C. Whole brain susceptibility mapping using compressed sensing. MRM
/// 2012;67:137–147. doi:10.1002/mrm.23000. Follows QSM.jl `vsharp` (QSM.md §6.2): radii from
/// `maxRadius` down to `minRadius` in steps of `radiusStep`; voxels of erode(M, r) not yet assigned
/// take g = (δ − s_r) ⊛ Δb; Δb_local = M_rmin·F⁻¹[F[g]·T(1 − Ŝ_rmax)].
/// The erosions come from one distance transform (`BallErosion`, the same sets as thresholding
/// s_r ⊛ M). FFTs: 3 + 2 per swept radius, in fused sweeps (`FFT.filter`): per radius the ball's
/// transform, the high-pass on its columns and the assignment of g as output planes are written;
/// the deconvolution with its input and its masked, cropped output inside one sweep. The largest
/// radius always sweeps (its kernel deconvolves); a radius that no voxel takes is skipped, and one
/// that few voxels take is summed over the ball in image space at those voxels instead.
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
        return try Self.localField(totalField: totalField, mask: mask, context: context, radii: radii,
                                   parameters: radii.indices.map { $0 == 0 ? "bgremove.maxRadius" : "bgremove.minRadius" },
                                   threshold: parameters.threshold, stage: "bgremove.minRadius")
    }

    /// The V-SHARP local field for `radii` (largest first; SHARP is the case of one radius), ball
    /// errors naming `parameters[i]`, an empty erosion naming `stage`.
    static func localField(totalField: Volume<Float>, mask: Mask, context: StageContext, radii: [Double],
                           parameters: [String], threshold: Double, stage: String) throws(QSMError) -> LocalField {
        let domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: radii[0])
        let s = domain.spectral, fft = s.fft, padding = domain.padding, grid = domain.grid
        let scale = s.normalization, capacity = BlockOrder.capacity(s)
        var balls: [SMVKernel.Ball] = []
        for (index, radius) in radii.enumerated() {
            balls.append(try SMVKernel.Ball(radius: radius, voxelSize: grid.voxelSize, shape: s.shape, parameter: parameters[index]))
        }
        // The radius each voxel takes: the largest whose erosion holds it (`BallErosion`: the same
        // sets as thresholding s_r ⊛ M, without an inverse FFT per radius). UInt8.max: none.
        let unassigned = UInt8.max
        let (state, voxels) = BallErosion.largestFittingRadius(mask.voxels, shape: grid.shape, voxelSize: grid.voxelSize, radii: radii)
        let valid = VoxelLoop.generateFlags(count: grid.count) { [state] in state[$0] != unassigned }
        try SMVDomain.requireNonEmpty(valid, stage: stage)
        // A radius whose voxels × ball points stay below 4N gets its high-pass f − s_r ⊛ f summed
        // over the ball in image space at its voxels (exact there: their balls lie in M) instead of
        // a 2-FFT sweep. Measured on the 256×256×176 head (default radii): 2 and 4 mm summed,
        // V-SHARP 860 → 820 ms CPU; also summing 6 mm (16N) gained nothing, the break-even.
        // The largest radius always sweeps: the deconvolution needs its kernel.
        let direct = radii.indices.map { $0 > 0 && voxels[$0] * balls[$0].count <= 4 * s.count }
        let used = radii.indices.map { voxels[$0] > 0 && !direct[$0] }
        func uninitialized<T>(_ count: Int) -> [T] { [T](unsafeUninitializedCapacity: count) { _, n in n = count } }
        var fieldSpectrum: [Complex<Float>] = uninitialized(s.halfCount), spectrum: [Complex<Float>] = uninitialized(s.halfCount)
        domain.forwardField(into: &fieldSpectrum)
        // Block-ordered (see `BlockOrder`): F[M·Δb], copied by the first sweep when other sweeps
        // follow, which read it there, and Ŝ of the largest radius (kept for the deconvolution).
        let copyField = used.dropFirst().contains(true)
        var fieldBlocks: [Complex<Float>] = uninitialized(copyField ? capacity : 1), largestKernel: [Float] = uninitialized(capacity)
        // g on the original grid: the erosions lie inside the mask, hence inside the original grid.
        // The first sweep (always run) writes every voxel of the mask's planes, 0 where the largest
        // radius is not the voxel's; the other planes are never read (transforms skip them).
        var g: [Float] = uninitialized(grid.count)
        for (index, ball) in balls.enumerated() where index == 0 || used[index] {
            // One sweep per radius (2 FFTs): the ball's transform, (1 − Ŝ_r)·F[M·Δb] on its columns,
            // and the high-passed field kept where this radius is the voxel's.
            let tag = UInt8(index)
            fieldSpectrum.withUnsafeBufferPointer { fb in fieldBlocks.withUnsafeMutableBufferPointer { bb in
                largestKernel.withUnsafeMutableBufferPointer { kb in state.withUnsafeBufferPointer { sb in
                    g.withUnsafeMutableBufferPointer { gb in spectrum.withUnsafeMutableBufferPointer { spectrumBuffer in
                        let natural = ReadPointer(fb.baseAddress!), blocks = SendablePointer(bb.baseAddress!)
                        let largest = SendablePointer(kb.baseAddress!), st = ReadPointer(sb.baseAddress!)
                        let gp = SendablePointer(gb.baseAddress!)
                        fft.filter(spectrum: spectrumBuffer, normalized: false, inputPlanes: ball.planes, outputPlanes: padding.maskPlanes,
                                   load: { z, plane in ball.load(z, plane) }, product: { columns in
                            let base = BlockOrder.base(columns, capacity: capacity)
                            for z in 0..<columns.depth {
                                let row = columns.values + z * columns.stride, offset = base + z * columns.stride
                                // As interleaved floats (re, im): the loops vectorise.
                                let values = UnsafeMutableRawPointer(row).assumingMemoryBound(to: Float.self)
                                let spectrum = UnsafeMutableRawPointer(blocks.base + offset).assumingMemoryBound(to: Float.self)
                                if index == 0 {
                                    // The first sweep copies F[M·Δb] into block order and keeps Ŝ_rmax.
                                    let source = UnsafeRawPointer(natural.base + columns.index(0, z)).assumingMemoryBound(to: Float.self)
                                    for q in 0..<columns.count {
                                        let kernelValue = values[2 * q]
                                        largest[offset + q] = kernelValue
                                        let h = (1 - kernelValue) * scale, re = source[2 * q], im = source[2 * q + 1]
                                        if copyField { spectrum[2 * q] = re; spectrum[2 * q + 1] = im }
                                        values[2 * q] = re * h; values[2 * q + 1] = im * h
                                    }
                                } else {
                                    for q in 0..<columns.count {
                                        let h = (1 - values[2 * q]) * scale
                                        values[2 * q] = spectrum[2 * q] * h; values[2 * q + 1] = spectrum[2 * q + 1] * h
                                    }
                                }
                            }
                        }, store: { z, plane in
                            if index == 0 {
                                padding.storePlane(z, plane) { i, v in gp[i] = st[i] == tag ? v : 0 }
                            } else {
                                padding.storePlane(z, plane) { i, v in if st[i] == tag { gp[i] = v } }
                            }
                        })
                    } }
                } }
            } }
        }
        for index in radii.indices where direct[index] && voxels[index] > 0 {
            highPassByBall(balls[index], tag: UInt8(index), state: state, domain: domain, into: &g)
        }
        // Δb_local = M_rmin·F⁻¹[F[g]·T(1 − Ŝ_rmax)], the truncated inverse evaluated in the product (2 FFTs).
        let threshold = Float(threshold)
        let local = [Float](unsafeUninitializedCapacity: grid.count) { out, n in
            let o = SendablePointer(out.baseAddress!)
            g.withUnsafeBufferPointer { gb in valid.withUnsafeBufferPointer { vb in largestKernel.withUnsafeBufferPointer { kb in
                let gp = ReadPointer(gb.baseAddress!), m = ReadPointer(vb.baseAddress!), k = ReadPointer(kb.baseAddress!)
                spectrum.withUnsafeMutableBufferPointer { sb in
                    fft.filter(spectrum: sb, normalized: false, inputPlanes: padding.maskPlanes, outputPlanes: padding.maskPlanes, load: { z, plane in
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
                padding.maskPlanes?.zeroPlanesOutside(o.base, planeSize: grid.shape.x * grid.shape.y, depth: grid.shape.z,
                                                      offset: padding.offset.z)
            } } }
            n = grid.count
        }
        return try SMVDomain.localField(grid: grid, field: local, valid: valid, stage: stage)
    }

    /// g ← f − s_r ⊛ f (f = M·Δb) at the voxels `state` gives to `tag`, as a sum over the ball in
    /// Double. Those voxels lie in erode(M, r), so their balls lie in M and in the original grid.
    static func highPassByBall(_ ball: SMVKernel.Ball, tag: UInt8, state: [UInt8], domain: SMVDomain, into g: inout [Float]) {
        let n = domain.grid.shape
        let offsets = ball.displacements.map { $0.x + n.x * ($0.y + n.y * $0.z) }, weight = 1 / Double(ball.count)
        domain.withInput { _, f in
            state.withUnsafeBufferPointer { sb in offsets.withUnsafeBufferPointer { ob in g.withUnsafeMutableBufferPointer { gb in
                let st = ReadPointer(sb.baseAddress!), o = ReadPointer(ob.baseAddress!), gp = SendablePointer(gb.baseAddress!)
                let terms = ob.count
                // Many chunks: the voxels of one radius cluster in a shell, unevenly along z.
                // Four voxels of this radius at a time, each summed in the scalar order
                // (bit-identical): four independent chains of Double adds instead of one, whose
                // latency bounded the loop.
                parallelFor(0..<sb.count, chunks: 64) { r in
                    var group = (0, 0, 0, 0), filled = 0
                    func single(_ i: Int) {
                        var sum = 0.0
                        for k in 0..<terms { sum += Double(f[i + o[k]]) }
                        gp[i] = Float(Double(f[i]) - sum * weight)
                    }
                    for i in r where st[i] == tag {
                        switch filled {
                        case 0: group.0 = i
                        case 1: group.1 = i
                        case 2: group.2 = i
                        default: group.3 = i
                        }
                        filled += 1
                        guard filled == 4 else { continue }
                        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                        for k in 0..<terms {
                            let offset = o[k]
                            s0 += Double(f[group.0 + offset]); s1 += Double(f[group.1 + offset])
                            s2 += Double(f[group.2 + offset]); s3 += Double(f[group.3 + offset])
                        }
                        gp[group.0] = Float(Double(f[group.0]) - s0 * weight)
                        gp[group.1] = Float(Double(f[group.1]) - s1 * weight)
                        gp[group.2] = Float(Double(f[group.2]) - s2 * weight)
                        gp[group.3] = Float(Double(f[group.3]) - s3 * weight)
                        filled = 0
                    }
                    if filled > 0 { single(group.0) }
                    if filled > 1 { single(group.1) }
                    if filled > 2 { single(group.2) }
                }
            } } }
        }
    }
}
