import QSMCore

/// Variable-radius SHARP: each voxel gets the largest ball that fits in the mask, then one TSVD
/// deconvolution with the largest kernel.
///
/// Wu B, Li W, Guidon A, Liu C. Whole brain susceptibility mapping using compressed sensing. MRM
/// 2012;67:137–147. doi:10.1002/mrm.23000. Follows QSM.jl `vsharp` (QSM.md §6.2): radii from
/// `maxRadius` down to `minRadius` in steps of `radiusStep`; voxels of erode(M, r) not yet assigned
/// take g = (δ − s_r) ⊛ Δb; Δb_local = M_rmin·F⁻¹[F[g]·T(1 − Ŝ_rmax)].
/// FFTs: 4 + 3 per radius (kernel, erosion, high-pass).
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
        var domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: radii[0])
        let s = domain.spectral
        var fieldSpectrum = VoxelLoop.complexZeros(s.halfCount)
        s.forward(domain.field, into: &fieldSpectrum)
        var scratch = VoxelLoop.complexZeros(s.halfCount)
        var ball = domain.takeWorkspace()
        var smoothedMask = VoxelLoop.zeros(s.count), filtered = VoxelLoop.zeros(s.count)
        var g = VoxelLoop.zeros(s.count)
        var assigned = [Bool](repeating: false, count: s.count)
        // F[s_r] is used where it is read (its real part), not copied out into a real kernel.
        var transform = scratch
        var second = scratch
        var largestKernel: [Float] = []
        for (index, radius) in radii.enumerated() {
            let ballCount = try SMVKernel.buildTransform(radius: radius, voxelSize: domain.grid.voxelSize, spectral: s,
                                                         ball: &ball, into: &transform,
                                                         parameter: index == 0 ? "bgremove.maxRadius" : "bgremove.minRadius")
            // One pass over the spectrum: K·F[M] for the erosion, (1 − K)·F[Δb] for the high-pass.
            VoxelLoop.multiply(domain.maskSpectrum, byRealPartOf: transform, into: &scratch,
                               and: fieldSpectrum, byOneMinus: &second, scale: s.normalization)
            s.rawInverse(&scratch, into: &smoothedMask)
            s.rawInverse(&second, into: &filtered)
            // Voxels of erode(M, r) not yet assigned take this radius's high-pass value.
            let cut = 1 - 0.5 / Float(ballCount)
            smoothedMask.withUnsafeBufferPointer { mb in filtered.withUnsafeBufferPointer { fb in
                g.withUnsafeMutableBufferPointer { gb in assigned.withUnsafeMutableBufferPointer { ab in
                    let mp = ReadPointer(mb.baseAddress!), fp = ReadPointer(fb.baseAddress!)
                    let gp = SendablePointer(gb.baseAddress!), ap = SendablePointer(ab.baseAddress!)
                    parallelFor(0..<gb.count) { r in
                        for i in r where mp[i] > cut && !ap[i] { gp[i] = fp[i]; ap[i] = true }
                    }
                } }
            } }
            if index == 0 {
                largestKernel = transform.withUnsafeBufferPointer { tb in
                    let tp = ReadPointer(tb.baseAddress!)
                    return VoxelLoop.generate(count: tb.count) { tp[$0].real }
                }
            }
        }
        // Δb_local = F⁻¹[F[g]·T(1 − Ŝ_rmax)], the truncated inverse evaluated in the product.
        s.forward(g, into: &scratch)
        let threshold = Float(parameters.threshold), normalization = s.normalization
        scratch.withUnsafeMutableBufferPointer { sb in largestKernel.withUnsafeBufferPointer { kb in
            let sp = SendablePointer(sb.baseAddress!), kp = ReadPointer(kb.baseAddress!)
            parallelFor(0..<sb.count) { r in
                for i in r {
                    let c = 1 - kp[i]
                    let k = (abs(c) >= threshold ? 1 / c : 0) * normalization
                    sp[i] = Complex(sp[i].real * k, sp[i].imaginary * k)
                }
            }
        } }
        s.rawInverse(&scratch, into: &filtered)
        return try domain.result(field: consume filtered, valid: assigned, stage: "bgremove.minRadius")
    }
}
