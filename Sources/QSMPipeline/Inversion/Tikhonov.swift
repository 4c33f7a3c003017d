import QSMCore

/// Closed-form Tikhonov inversion: χ = F⁻¹[D·F[f] / (D² + λ|Γ̂|²)], zero where the denominator is 0.
///
/// Bilgic B, Chatnuntawech I, Fan AP, Setsompop K, Cauley SF, Wald LL, et al. JMRI 2014;40:181–191.
/// doi:10.1002/jmri.24365. Cross-checked against QSM.jl `tikh` (QSM.md §7.3).
public struct Tikhonov: DipoleInversion {
    /// The regulariser Γ.
    public enum Regularizer: String, Codable, Sendable, CaseIterable {
        /// Γ = I, |Γ̂|² = 1.
        case identity
        /// Γ = ∇ (forward differences), |Γ̂|² = Σ(2 − 2cos(2πm/N))/Δ².
        case gradient
        /// Γ = ∇², |Γ̂|² = (that sum)².
        case laplacian
    }

    /// How λ is chosen.
    public enum LambdaSelection: String, Codable, Sendable, CaseIterable {
        /// The `lambda` parameter as given.
        case fixed
        /// The corner of the L-curve over `TikhonovLCurve.defaultLambdas` (`lambda` is ignored).
        case lcurve
    }

    /// Parameters; defaults from QSM.jl `tikh` and QSM.rs `TikhonovParams`.
    public struct Parameters: MethodParameters {
        /// Regularisation weight λ ≥ 0 (for fields in ppm). Default QSM.jl/QSM.rs.
        public var lambda = 1e-2
        /// Regulariser. Default identity (QSM.jl code default, QSM.rs).
        public var regularizer = Regularizer.identity
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// Fixed λ (default) or the L-curve corner.
        public var lambdaSelection = LambdaSelection.fixed
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("lambda", \.lambda, in: .nonNegative, "Regularisation weight λ (fields in ppm). Default 1e-2 (QSM.jl tikh, QSM.rs).")  ,
             .choice("regularizer", \.regularizer, "Γ: identity, gradient or laplacian. Default identity (QSM.jl code, QSM.rs)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels, before the fast FFT size. Default 0 (QSM.jl)."),
             .choice("lambdaSelection", \.lambdaSelection,
                     "fixed uses lambda; lcurve takes the L-curve corner over 1e-5…1 (31 values), ignoring lambda. Default fixed.")]
        }
    }

    /// Registry name.
    public static let name = "tikhonov"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Closed-form Tikhonov, identity/gradient/Laplacian regulariser (Bilgic et al. 2014)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm), zero outside `mask`.
    public func apply(localField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> Volume<Float> {
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")
        let onTheFly = parameters.lambdaSelection == .fixed && parameters.regularizer == .identity
        let grid = try InversionGrid(localField.grid, padding: parameters.padding, context: context,
                                     withLaplacian: parameters.regularizer != .identity, withDipole: !onTheFly)
        let power = parameters.regularizer.symbolPower, scale = 1 / Float(grid.count)
        if onTheFly {
            let kernel = DipoleKernel.Columns(shape: grid.shape, voxelSize: grid.voxelSize, b0Direction: context.b0Direction,
                                              dc: context.conventions.dipoleDC)
            return Self.filter(grid, field: localField, mask: mask, kernel: kernel, lambda: Float(parameters.lambda))
        }
        // The L-curve: two FFTs and one parallel pass over the half spectrum (1/N folded in), plus
        // pad and crop, and one pass per λ on the same spectrum.
        var field = grid.pad(localField.voxels, mask: mask.voxels)
        var spectrum = grid.spectrumBuffer()
        field.withUnsafeBufferPointer { i in spectrum.withUnsafeMutableBufferPointer { grid.fft.forward(i, into: $0) } }
        let lambda = switch parameters.lambdaSelection {
        case .fixed: Float(parameters.lambda)
        case .lcurve: Float(Self.curve(grid, spectrum: spectrum, regularizer: parameters.regularizer,
                                       lambdas: TikhonovLCurve.defaultLambdas).lambda)
        }
        spectrum.withUnsafeMutableBufferPointer { sb in
            grid.dipole.withUnsafeBufferPointer { db in grid.laplacian.withUnsafeBufferPointer { lb in
                let s = SendablePointer(sb.baseAddress!), d = ReadPointer(db.baseAddress!), l = ReadPointer(lb.baseAddress!)
                parallelFor(0..<sb.count) { r in
                    for i in r {
                        let g: Float = power == 0 ? 1 : power == 1 ? l[i] : l[i] * l[i]
                        let denominator = d[i] * d[i] + lambda * g
                        let k = denominator > 0 ? d[i] / denominator * scale : 0
                        s[i] = Complex(s[i].real * k, s[i].imaginary * k)
                    }
                }
            } }
        }
        spectrum.withUnsafeMutableBufferPointer { s in field.withUnsafeMutableBufferPointer { grid.fft.inverse(s, into: $0, normalized: false) } }
        return grid.crop(consuming: consume field, mask: mask)
    }

    /// χ for a fixed λ and Γ = I in one fused sweep: the masked field padded as the transform's input
    /// planes, the kernel D/(D² + λ)·(1/N) applied to each block of k-space columns with D evaluated
    /// there (the arithmetic of the general path, without reading a stored D across the spectrum),
    /// the crop and mask as output planes are written. Two FFTs.
    private static func filter(_ grid: InversionGrid, field: Volume<Float>, mask: Mask, kernel: DipoleKernel.Columns,
                               lambda: Float) -> Volume<Float> {
        let scale = 1 / Float(grid.count)
        var spectrum = grid.spectrumBuffer()
        let planes = grid.planes(mask: mask.voxels)
        let chi = uninitializedArray(count: grid.original.count) { out in
            field.voxels.withUnsafeBufferPointer { fb in mask.voxels.withUnsafeBufferPointer { mb in
                spectrum.withUnsafeMutableBufferPointer { sb in
                    let f = ReadPointer(fb.baseAddress!), keep = ReadPointer(mb.baseAddress!)
                    grid.fft.filter(spectrum: sb, normalized: false, inputPlanes: planes, outputPlanes: planes, load: { z, plane in
                        grid.padPlane(z, plane, values: f, mask: keep)
                    }, product: { columns in
                        kernel.multiply(columns) { d in
                            let denominator = d * d + lambda
                            return denominator > 0 ? d / denominator * scale : 0
                        }
                    }, store: { z, plane in
                        grid.cropPlane(z, plane, into: out, mask: keep)
                    })
                }
                let inner = grid.original.shape
                planes.zeroPlanesOutside(out.base, planeSize: inner.x * inner.y, depth: inner.z, offset: grid.offset.z)
            } }
        }
        return Volume(unchecked: grid.original, chi)
    }
}
