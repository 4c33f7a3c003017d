import QSMCore

/// Regularization-enabled SHARP: Tikhonov-regularised deconvolution of the SMV high-pass, by CG.
///
/// Sun H, Wilman AH. Background field removal using spherical mean value filtering and Tikhonov
/// regularization. MRM 2014;71:1151–1157. doi:10.1002/mrm.24765. QSM.md §6.3:
/// min_x ‖M_r·C x − M_r·C Δb‖² + λ‖x‖², C = F⁻¹(1 − Ŝ_r)F; Δb_local = M_r·x. Solved by conjugate
/// gradients on the normal equations (C M_r C + λ I) x = C M_r C Δb, from x = 0, stopping when
/// ‖residual‖ ≤ tolerance·‖right-hand side‖ or after maxIterations. 4 FFTs per iteration.
public struct RESHARP: BackgroundRemoval {
    /// RESHARP's parameters.
    public struct Parameters: MethodParameters {
        /// SMV radius in mm. Default: QSM.rs RESHARP defaults, QSM.md §6.3.
        public var radius = 6.0
        /// Tikhonov weight λ (field in ppm), ≥ 0. Default: QSM.rs `tik_reg`.
        public var regularization = 1e-4
        /// Relative residual at which CG stops, in (0, 1). Default: QSM.rs.
        public var tolerance = 1e-6
        /// CG iteration cap, ≥ 1. Default: QSM.rs.
        public var maxIterations = 30
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("radius", \.radius, in: .positive, "SMV radius, mm. Default: QSM.rs."),
             .real("regularization", \.regularization, in: .nonNegative, "Tikhonov weight λ for fields in ppm. Default: QSM.rs tik_reg."),
             .real("tolerance", \.tolerance, in: .openUnit, "CG stops at this relative residual. Default: QSM.rs."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "CG iteration cap. Default: QSM.rs.")]
        }
    }

    public static let name = "resharp"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "SHARP with Tikhonov-regularised deconvolution by CG (Sun & Wilman 2014)"
    public var parameters: Parameters
    /// RESHARP with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) inside the mask eroded by the radius.
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        let domain = try SMVDomain(totalField: totalField, mask: mask, context: context, largestRadius: parameters.radius)
        let s = domain.spectral
        let kernel = try domain.kernel(radius: parameters.radius, parameter: "bgremove.radius")
        let eroded = domain.erosion(radius: parameters.radius)
        let highPass = kernel.highPass
        let lambda = Float(parameters.regularization)
        // Normal operator N(x) = C·M_r·C·x + λx (C is real and symmetric: its symbol is real and even),
        // each C one fused sweep: M_r applied as the first one's planes are stored, and planes
        // without eroded voxels neither transformed back by the first nor loaded by the second.
        var scratch = VoxelLoop.complexZeros(s.halfCount)
        var inner = VoxelLoop.zeros(s.count)
        let highPassFilter = SpectralFilter(fft: s.fft, kernel: highPass)
        let erodedWeight = VoxelLoop.generate(count: s.count) { eroded[$0] ? Float(1) : 0 }
        let erodedPlanes = highPassFilter.planes(of: erodedWeight)
        let normal: ([Float], inout [Float]) -> Void = { x, y in
            highPassFilter.apply(x, into: &inner, spectrum: &scratch, outputWeight: erodedWeight, outputPlanes: erodedPlanes)
            highPassFilter.apply(inner, into: &y, spectrum: &scratch, inputPlanes: erodedPlanes)
            x.withUnsafeBufferPointer { xb in
                let xp = ReadPointer(xb.baseAddress!)
                VoxelLoop.update(&y) { i, v in v + lambda * xp[i] }
            }
        }
        var rhs = s.filter(domain.field, kernel: highPass)
        for i in 0..<rhs.count where !eroded[i] { rhs[i] = 0 }
        rhs = s.filter(rhs, kernel: highPass)
        let x = ConjugateGradient.solve(rhs: rhs, tolerance: parameters.tolerance,
                                        maxIterations: parameters.maxIterations, operator: normal).solution
        return try domain.result(field: x, valid: eroded, stage: "bgremove.radius")
    }
}
