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
        /// Largest SMV radius, mm. Default 18 mm: QSM.jl `vsharp` uses 18 × the smallest voxel size.
        public var maxRadius = 18.0
        /// Smallest SMV radius, mm, ≤ maxRadius. Default 2 mm: QSM.jl uses 2 × the largest voxel size.
        public var minRadius = 2.0
        /// Step between radii, mm. Default 2 mm: QSM.jl steps by 2 × the largest voxel size.
        public var radiusStep = 2.0
        /// TSVD threshold on |1 − Ŝ_rmax| in (0, 1). Default 0.05 (QSM.jl `vsharp`, QSM.rs `VsharpParams`).
        public var threshold = 0.05
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("maxRadius", \.maxRadius, in: .positive, "Largest SMV radius, mm. Default 18 mm (QSM.jl vsharp at 1 mm voxels)."),
             .real("minRadius", \.minRadius, in: .positive, "Smallest SMV radius, mm (sets the erosion). Default 2 mm (QSM.jl vsharp at 1 mm voxels)."),
             .real("radiusStep", \.radiusStep, in: .positive, "Step between radii, mm. Default 2 mm (QSM.jl vsharp at 1 mm voxels)."),
             .real("threshold", \.threshold, in: .openUnit,
                   "TSVD threshold on |1 − Ŝ| of the largest kernel. Default 0.05 (QSM.jl vsharp, QSM.rs VsharpParams).")]
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
        let s = domain.spectral
        let fieldSpectrum = s.forward(domain.field)
        var g = [Float](repeating: 0, count: s.count)
        var assigned = [Bool](repeating: false, count: s.count)
        var largestHighPass: [Float] = []
        for (index, radius) in radii.enumerated() {
            let kernel = try domain.kernel(radius: radius, parameter: index == 0 ? "bgremove.maxRadius" : "bgremove.minRadius")
            let eroded = kernel.erode(maskSpectrum: domain.maskSpectrum, spectral: s)
            let highPass = kernel.highPass
            let filtered = s.inverse(fieldSpectrum, times: highPass)
            for i in 0..<g.count where eroded[i] && !assigned[i] { g[i] = filtered[i]; assigned[i] = true }
            if index == 0 { largestHighPass = highPass }
        }
        let local = s.filter(g, kernel: truncatedInverse(largestHighPass, threshold: parameters.threshold))
        return try domain.result(field: local, valid: assigned, stage: "bgremove.minRadius")
    }
}
