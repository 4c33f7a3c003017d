import QSMCore

/// Projection onto dipole fields: fits the field inside the mask with dipoles outside it.
///
/// Liu T, Khalidov I, de Rochefort L, Spincemaille P, Liu J, Tsiouris AJ, et al. A novel background
/// field removal method for MRI using projection onto dipole fields (PDF). NMR Biomed
/// 2011;24:1129–1136. doi:10.1002/nbm.1670. QSM.md §6.5 with W = 1:
/// χ_out = argmin ‖M(Δb − D ⊛ (M̄x))‖², Δb_local = M(Δb − D ⊛ (M̄χ_out)), solved by CGLS (CG on the
/// normal equations without forming them; Hestenes & Stiefel 1952) from x = 0, stopping when
/// ‖Aᵀr‖ ≤ tolerance·‖Aᵀb‖ or after maxIterations. k-space dipole kernel with the context's D(0)
/// (QSM.jl defaults to an image-space kernel; QSM.md §2.3). 4 FFTs per iteration + 2.
public struct PDF: BackgroundRemoval {
    /// PDF's parameters.
    public struct Parameters: MethodParameters {
        /// Relative gradient norm at which CGLS stops, in (0, 1). Default: QSM.jl `pdf`, QSM.rs `PdfParams`.
        public var tolerance = 1e-5
        /// Iteration cap, ≥ 1; 0 means ⌈√(voxel count)⌉ as QSM.jl `pdf`.
        public var maxIterations = 0
        /// Zero padding per face, voxels, so exterior dipoles do not wrap around. Default: QSM.jl
        /// pads only to a fast FFT size (SEPIA uses 40).
        public var padding = 0
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("tolerance", \.tolerance, in: .openUnit, "CGLS stops when ‖Aᵀr‖ ≤ tolerance·‖Aᵀb‖. Default: QSM.jl pdf, QSM.rs."),
             .integer("maxIterations", \.maxIterations, in: 0...1_000_000, "Iteration cap; 0 = ⌈√N⌉ (QSM.jl pdf)."),
             .integer("padding", \.padding, in: 0...1000, "Zero padding per face, voxels. Default: QSM.jl pdf.")]
        }
    }

    public static let name = "pdf"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "Projection onto dipole fields (Liu et al. 2011)"
    public var parameters: Parameters
    /// PDF with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) on the whole mask (PDF does not erode).
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        try context.validate()
        try InputCheck.field(totalField, mask: mask, name: "total field")
        let grid = totalField.grid
        let p = parameters.padding
        let padding = p == 0 ? Padding(identity: grid.shape)
            : Padding(mask: Mask(grid: grid, repeating: true), margin: SIMD3(repeating: p))
        let s = try Spectral(shape: padding.shape)
        let inside = padding.pad(mask.voxels, fill: false)
        let maskVoxels = mask.voxels, values = totalField.voxels
        let b = padding.pad(VoxelLoop.generate(count: grid.count) { maskVoxels[$0] ? values[$0] : 0 }, fill: 0)
        // A x = M·D⊛(M̄x); Aᵀ y = M̄·D⊛(M y): D is real and even, so F⁻¹ D F is symmetric. Each is one
        // fused sweep: D evaluated per block of k-space columns, the mask applied as planes are written.
        let kernel = DipoleKernel.Columns(shape: s.shape, voxelSize: grid.voxelSize, b0Direction: context.b0Direction,
                                          dc: context.conventions.dipoleDC)
        let fft = s.fft, planeSize = s.shape.x * s.shape.y
        var scratch = [Complex<Float>](unsafeUninitializedCapacity: s.halfCount) { _, n in n = s.halfCount }
        // Planes without mask voxels: Aᵀ's input is zero there and A's output is not computed.
        let maskPlanes = inside.withUnsafeBufferPointer { PlaneSupport(occupiedBy: $0, planeSize: planeSize) }
        func convolve(_ x: [Float], into y: inout [Float], keepInside: Bool) {
            x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                inside.withUnsafeBufferPointer { mb in scratch.withUnsafeMutableBufferPointer { sb in
                    let source = ReadPointer(xb.baseAddress!), target = SendablePointer(yb.baseAddress!)
                    let m = ReadPointer(mb.baseAddress!)
                    fft.filter(spectrum: sb, inputPlanes: keepInside ? nil : maskPlanes, outputPlanes: keepInside ? maskPlanes : nil,
                               load: { z, plane in
                        plane.baseAddress!.update(from: source.base + z * planeSize, count: planeSize)
                    }, product: { columns in
                        kernel.multiply(columns) { $0 }
                    }, store: { z, plane in
                        let offset = z * planeSize
                        for i in 0..<planeSize { target[offset + i] = m[offset + i] == keepInside ? plane[i] : 0 }
                    })
                    if keepInside {
                        maskPlanes.zeroPlanesOutside(target.base, planeSize: planeSize, depth: s.shape.z)
                    }
                } }
            } }
        }
        let forward: ([Float], inout [Float]) -> Void = { x, y in convolve(x, into: &y, keepInside: true) }     // x is zero inside M
        let adjoint: ([Float], inout [Float]) -> Void = { y, x in convolve(y, into: &x, keepInside: false) }    // y is zero outside M
        let cap = parameters.maxIterations > 0 ? parameters.maxIterations
            : Int(Double(grid.count).squareRoot().rounded(.up))
        // CGLS: r = b − Ax stays available, and the local field is exactly r (W = 1).
        var x = VoxelLoop.zeros(s.count)
        var r = b
        var gradient = x, q = x
        adjoint(r, &gradient)
        var direction = gradient
        var gamma = VoxelLoop.dot(gradient, gradient)
        let stop = parameters.tolerance * gamma.squareRoot()
        var iteration = 0
        while iteration < cap, gamma.squareRoot() > stop, gamma > 0 {
            forward(direction, &q)
            let qq = VoxelLoop.dot(q, q)
            guard qq > 0 else { break }
            let alpha = Float(gamma / qq)
            ConjugateGradient.axpy(&x, alpha, direction)
            ConjugateGradient.axpy(&r, -alpha, q)
            adjoint(r, &gradient)
            let next = VoxelLoop.dot(gradient, gradient)
            ConjugateGradient.xpby(&direction, gradient, Float(next / gamma))
            gamma = next
            iteration += 1
        }
        var local = padding.crop(r, fill: 0)
        for i in 0..<local.count where !mask.voxels[i] { local[i] = 0 }
        return LocalField(field: try Volume(grid: grid, voxels: local), mask: mask)
    }
}
