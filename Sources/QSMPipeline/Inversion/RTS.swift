import QSMCore

/// Rapid two-step inversion: LSMR on the well-conditioned k-space, then TV on the ill-conditioned cone.
///
/// Kames C, Wiggermann V, Rauscher A. NeuroImage 2018;167:276–283.
/// doi:10.1016/j.neuroimage.2017.11.018. Steps as QSM.jl `rts` (QSM.md §7.7): (1) `lsmrIterations`
/// of LSMR on D·X = F[f], masked → χ₁; (2) min (μ/2)‖P(Fχ − Fχ₁)‖² + ‖∇χ‖₁ with P = 1{|D| > δ},
/// by ADMM (z = ∇χ, threshold 1/ρ), ρ ← γρ when the primal residual exceeds τ× its last value.
public struct RTS: IterativeInversion {
    /// Parameters; defaults from QSM.jl `rts` (identical in QSM.rs).
    public struct Parameters: MethodParameters {
        /// Threshold δ on |D| separating well- from ill-conditioned k-space, in (0, 2/3).
        public var threshold = 0.15
        /// Data-consistency weight μ > 0.
        public var mu = 1e5
        /// Initial ADMM penalty ρ > 0.
        public var rho = 10.0
        /// Relative-change stopping tolerance in (0, 1).
        public var tolerance = 1e-2
        /// ADMM iteration cap ≥ 1.
        public var maxIterations = 20
        /// LSMR iterations in step 1, ≥ 1.
        public var lsmrIterations = 4
        /// ρ grows when the primal residual exceeds τ times its previous value; τ in (0, 1).
        public var residualRatio = 0.7
        /// Factor γ > 1 by which ρ grows.
        public var rhoGrowth = 5.0
        /// Extra zero padding per axis before growing to a fast FFT size, voxels.
        public var padding = 0
        /// The defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("threshold", \.threshold, in: Interval(0, 2.0 / 3, lowerClosed: false, upperClosed: false, text: "(0, 2/3)"),
                   "|D| above which k-space is well conditioned. Default 0.15 (QSM.jl rts)."),
             .real("mu", \.mu, in: .positive, "Data-consistency weight μ. Default 1e5 (QSM.jl rts)."),
             .real("rho", \.rho, in: .positive, "Initial ADMM penalty ρ. Default 10 (QSM.jl rts)."),
             .real("tolerance", \.tolerance, in: .openUnit, "Stop when ‖Δχ‖/‖χ‖ falls below this. Default 1e-2 (QSM.jl rts)."),
             .integer("maxIterations", \.maxIterations, in: 1...100_000, "ADMM iteration cap. Default 20 (QSM.jl rts)."),
             .integer("lsmrIterations", \.lsmrIterations, in: 1...1000, "LSMR iterations of step 1. Default 4 (QSM.jl rts)."),
             .real("residualRatio", \.residualRatio, in: .openUnit, "ρ grows when the primal residual exceeds this × its last value. Default 0.7 (QSM.jl rts)."),
             .real("rhoGrowth", \.rhoGrowth, in: Interval(1, .infinity, lowerClosed: false, upperClosed: false), "Factor γ by which ρ grows. Default 5 (QSM.jl rts)."),
             .integer("padding", \.padding, in: 0...1000, "Extra zero padding per axis, voxels. Default 0 (QSM.jl).")]
        }
    }

    /// Registry name.
    public static let name = "rts"
    /// Stage.
    public static let kind = StageKind.inversion
    /// One line for `list methods`.
    public static let summary = "Rapid two-step: LSMR then TV on the ill-conditioned cone (Kames et al. 2018)"
    /// The parameters.
    public var parameters: Parameters
    /// A method with `parameters`.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// χ (ppm) from a local field (ppm), zero outside `mask`; with `recordObjective`, the log holds
    /// step 2's objective (μ/2)‖P(Fχ − Fχ₁)‖² + ‖∇χ‖₁ (anisotropic, F unitary) per iteration.
    public func invert(localField: Volume<Float>, mask: Mask, context: StageContext, recordObjective: Bool = false)
        throws(QSMError) -> (chi: Volume<Float>, log: IterationLog) {
        let p = parameters
        try validateParameters()
        try InputCheck.field(localField, mask: mask, name: "local field")

        // The Laplacian symbol is formed per column block below, not as a half-spectrum array.
        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context, withLaplacian: false)
        let n = grid.count, h = grid.halfCount, scale = 1 / Float(n)

        // Step 1: LSMR in k-space on the diagonal operator D, in place on the spectrum's own memory
        // (Complex<Float> is two Floats, the interleaved layout LSMR expects). The padded masked field
        // is formed plane by plane inside the forward transform.
        var spectrum = grid.spectrumBuffer()
        grid.forwardPadded(localField.voxels, mask: mask.voxels, into: &spectrum)
        spectrum.withUnsafeMutableBufferPointer { sb in
            sb.withMemoryRebound(to: Float.self) { x in
                grid.dipole.withUnsafeBufferPointer {
                    DiagonalLSMR.solve(diagonal: $0, rhs: UnsafeBufferPointer(x), iterations: p.lsmrIterations, into: x)
                }
            }
        }
        // Step 2's duals and ∇ᵀ(z − u): each is written before it is read, so none is zero-filled.
        let work0 = uninitializedArray(count: n) { _ in }, work1 = uninitializedArray(count: n) { _ in }
        let work2 = uninitializedArray(count: n) { _ in }, work3 = uninitializedArray(count: n) { _ in }
        // χ₁ = M·F⁻¹[x] (1/N folded into the mask pass, done as each output plane is written); x's
        // memory then takes F[χ₁].
        var chi = uninitializedArray(count: n) { _ in }
        let planeSize = grid.shape.x * grid.shape.y
        // Planes without mask voxels: χ₁ is zero there (not transformed back; not loaded forward).
        let planes = grid.planes(mask: mask.voxels)
        chi.withUnsafeMutableBufferPointer { cb in
            spectrum.withUnsafeMutableBufferPointer { sb in mask.voxels.withUnsafeBufferPointer { mb in
                let c = SendablePointer(cb.baseAddress!), keep = ReadPointer(mb.baseAddress!)
                let (inner, outer, o) = (grid.original.shape, grid.shape, grid.offset)
                grid.fft.inverse(inPlace: sb, normalized: false, outputPlanes: planes, product: { _ in }, store: { z, plane in
                    // The padded mask is 0 outside the original grid, so only its planes and rows are read.
                    let out = c.base + z * planeSize
                    out.update(repeating: 0, count: planeSize)
                    guard (o.z..<o.z + inner.z).contains(z) else { return }
                    for y in 0..<inner.y {
                        let d = o.x + outer.x * (y + o.y), m = inner.x * (y + inner.y * (z - o.z))
                        for x in 0..<inner.x where keep[m + x] { out[d + x] = plane[d + x] * scale }
                    }
                })
                planes.zeroPlanesOutside(c.base, planeSize: planeSize, depth: outer.z)
            } }
        }
        // F[χ₁]. That transform's column pass also writes, block-ordered (`BlockOrder`: each χ-step
        // reads them in streaming order), μP·F[χ₁] and the Laplacian symbol −λ ≥ 0 with
        // P = 1{|D| > δ} as its sign.
        let delta = Float(p.threshold), mu = Float(p.mu)
        let capacity = BlockOrder.capacity(halfCount: h, depth: grid.shape.z)
        var fixedBlocks = [Complex<Float>](unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
        var symbolBlocks = uninitializedArray(count: capacity) { _ in }
        let laplacian = LaplacianEigenvalues.Columns(shape: grid.shape, voxelSize: grid.voxelSize)
        chi.withUnsafeBufferPointer { cb in fixedBlocks.withUnsafeMutableBufferPointer { fb in
            symbolBlocks.withUnsafeMutableBufferPointer { lb in grid.dipole.withUnsafeBufferPointer { db in
                let c = ReadPointer(cb.baseAddress!), fixed = SendablePointer(fb.baseAddress!)
                let symbol = SendablePointer(lb.baseAddress!), d = ReadPointer(db.baseAddress!)
                spectrum.withUnsafeMutableBufferPointer { sb in
                    grid.fft.forward(into: sb, inputPlanes: planes, load: { z, plane in
                        plane.baseAddress!.update(from: c.base + z * planeSize, count: planeSize)
                    }, inspect: { columns in
                        let base = BlockOrder.base(columns, capacity: capacity), width = laplacian.halfWidth
                        for q in 0..<columns.count {
                            let j = columns.first + q, partial = laplacian.lx[j % width] + laplacian.ly[j / width]
                            for z in 0..<columns.depth {
                                let at = base + z * columns.stride + q, v = columns.values[z * columns.stride + q]
                                let wellConditioned: Float = abs(d[columns.index(q, z)]) > delta ? mu : 0
                                fixed[at] = Complex(wellConditioned * v.real, wellConditioned * v.imaginary)
                                // −λ as InversionGrid's Laplacian (Double sum, rounded, negated); −0 at k = 0 made +0.
                                // P = 1 is a negative value: −λ, or the least subnormal where λ = 0
                                // (k = 0), which ρ·(it) leaves μ + ρ·(it) = μ unchanged.
                                let l = (-Float(partial + laplacian.lz[z])).magnitude
                                symbol[at] = wellConditioned > 0 ? -max(l, .leastNonzeroMagnitude) : l
                            }
                        }
                    })
                }
            } }
        } }

        // F[χ₁] in natural order serves only the objective; otherwise its memory is the χ-steps' scratch.
        let chi1Hat: [Complex<Float>] = recordObjective ? spectrum : []
        if recordObjective { spectrum = grid.spectrumBuffer() }

        // Step 2: ADMM on the ill-conditioned cone. The χ-step is
        // F⁻¹[(μP·F[χ₁] + ρ·F[∇ᵀ(z − u)])/(μP + ρ|∇̂|²)] (1/N folded in), its product in the inverse
        // transform's column pass, and ‖χ − χ_previous‖, ‖χ‖ summed as its planes overwrite χ.
        var rho = Float(p.rho)
        // Recording the objective costs one more FFT per iteration.
        var scratch = recordObjective ? grid.spectrumBuffer() : []
        // Start from z − u = 0 (as QSM.rs): the first χ-step is then the well-conditioned part of χ₁
        // (no forward transform: F[∇ᵀ(z − u)] = 0), and its change is measured against χ₁. Starting
        // from z = ∇χ₁ (QSM.jl) reproduces χ₁ minus its mean in the first step, so the 1e-2 test
        // can stop before any TV step. The duals are written by the first shrinkage pass.
        var admm = ADMMState(ux: work0, uy: work1, uz: work2)
        var residual = Double.infinity
        var log = IterationLog()
        // ∇ᵀ(z − u) for the χ-step, formed by the shrinkage pass; when ρ has just grown by γ, the
        // next χ-step adds (1 − 1/γ)·∇ᵀu as it loads it (`ADMMState.loadAdjoint`).
        var work = consume work3
        var changeSums = [SIMD2<Double>](repeating: .zero, count: grid.shape.z)
        for iteration in 1...p.maxIterations {
            let first = iteration == 1
            spectrum.withUnsafeMutableBufferPointer { sb in
                fixedBlocks.withUnsafeBufferPointer { fb in symbolBlocks.withUnsafeBufferPointer { lb in
                    chi.withUnsafeMutableBufferPointer { cb in changeSums.withUnsafeMutableBufferPointer { pb in
                        let fixed = ReadPointer(fb.baseAddress!), symbol = ReadPointer(lb.baseAddress!)
                        let c = SendablePointer(cb.baseAddress!), sums = SendablePointer(pb.baseAddress!)
                        let rho = rho
                        let product: @Sendable (SpectralColumns) -> Void = { columns in
                            Self.applySystem(columns, fixed: fixed, symbol: symbol, capacity: capacity, rho: rho, mu: mu,
                                             scale: scale, first: first)
                        }
                        let store: @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void = { z, plane in
                            sums[z] = Self.overwrite(c.base + z * planeSize, with: plane)
                        }
                        if first {
                            grid.fft.inverse(inPlace: sb, normalized: false, product: product, store: store)
                        } else {
                            admm.loadAdjoint(grid, work: work) { load in
                                grid.fft.filter(spectrum: sb, normalized: false, load: load, product: product, store: store)
                            }
                        }
                    } }
                } }
            }
            let change = changeSums.reduce(.zero, +)
            let relative = change[1] > 0 ? (change[0] / change[1]).squareRoot() : 0
            if recordObjective {
                log.objective.append(Self.objective(grid, chi: chi, chi1Hat: chi1Hat, delta: delta, mu: mu, scratch: &scratch))
            }
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
            if iteration == p.maxIterations { break }
            // One fused pass: ∇χ, the shrinkage z = S_{1/ρ}(∇χ + u), the dual step u += ∇χ − z, the
            // primal residual and the next χ-step's ∇ᵀ(z − u).
            let primal = admm.shrink(grid, chi: chi, threshold: 1 / rho, dualsZero: first, adjoint: &work)
            if primal > p.residualRatio * residual {
                let growth = Float(p.rhoGrowth)
                rho *= growth
                admm.rescale(by: growth)
            }
            residual = primal
        }
        // The crop is one parallel pass into `work`'s storage (moving χ down in place is a serial
        // 46 MB copy at 256×256×176, a fresh array costs its page faults).
        return (grid.crop(chi, mask: mask, reusing: consume work), log)
    }

    /// One block of the χ-step: s ← (μP·F[χ₁] + ρ·s)·(1/N)/(μP + ρ|∇̂|²), 0 where the denominator
    /// is 0 (s = 0 when `first`), from the block-ordered μP·F[χ₁] and sign-flagged symbol.
    @inline(__always)
    private static func applySystem(_ columns: SpectralColumns, fixed: ReadPointer<Complex<Float>>, symbol: ReadPointer<Float>,
                                    capacity: Int, rho: Float, mu: Float, scale: Float, first: Bool) {
        let base = BlockOrder.base(columns, capacity: capacity)
        let rho8 = SIMD8<Float>(repeating: rho), mu8 = SIMD8<Float>(repeating: mu), scale8 = SIMD8<Float>(repeating: scale)
        for z in 0..<columns.depth {
            let row = columns.values + z * columns.stride, at = base + z * columns.stride
            // Four complex values (eight Floats) at a time, the per-k factors duplicated per real/
            // imaginary pair; the same arithmetic as the scalar tail.
            let values = SendablePointer(UnsafeMutableRawPointer(row).assumingMemoryBound(to: Float.self))
            let constant = ReadPointer(UnsafeRawPointer(fixed.base + at).assumingMemoryBound(to: Float.self))
            let e = symbol.base + at
            var q = 0
            while q + 4 <= columns.count {
                let encoded = SIMD8<Float>(e[q], e[q], e[q + 1], e[q + 1], e[q + 2], e[q + 2], e[q + 3], e[q + 3])
                var wellConditioned = SIMD8<Float>()
                wellConditioned.replace(with: mu8, where: encoded .< 0)
                let a = wellConditioned + rho8 * lanewiseAbs(encoded)
                var k = scale8 / a
                k.replace(with: 0, where: .!(a .> 0))
                let v = first ? SIMD8<Float>() : values.vector(at: 2 * q)
                values.setVector((constant.vector(at: 2 * q) + rho8 * v) * k, at: 2 * q)
                q += 4
            }
            for q in q..<columns.count {
                let encoded = e[q]
                let wellConditioned: Float = encoded < 0 ? mu : 0
                let a = wellConditioned + rho * encoded.magnitude
                let k: Float = a > 0 ? scale / a : 0
                let f = fixed[at + q], v = first ? Complex<Float>.zero : row[q]
                row[q] = Complex((f.real + rho * v.real) * k, (f.imaginary + rho * v.imaginary) * k)
            }
        }
    }

    /// Writes `plane` over `out` and returns (‖plane − out‖², ‖plane‖²) (Float terms, Double lane sums).
    @inline(__always)
    private static func overwrite(_ out: UnsafeMutablePointer<Float>, with plane: UnsafeMutableBufferPointer<Float>) -> SIMD2<Double> {
        let source = SendablePointer(plane.baseAddress!), target = SendablePointer(out)
        var change8 = SIMD8<Double>(), size8 = SIMD8<Double>(), change = 0.0, size = 0.0
        var i = 0
        while i + 8 <= plane.count {
            let value = source.vector(at: i), difference = value - target.vector(at: i)
            change8 += widened(difference * difference); size8 += widened(value * value)
            target.setVector(value, at: i)
            i += 8
        }
        for i in i..<plane.count {
            let value = plane[i], difference = value - out[i]
            change += Double(difference * difference); size += Double(value * value)
            out[i] = value
        }
        return SIMD2(change + change8.sum(), size + size8.sum())
    }

    /// (μ/2)‖P(Fχ − Fχ₁)‖² + ‖∇χ‖₁ (anisotropic, as the per-component shrinkage), with F unitary:
    /// Parseval on the half spectrum counts the kx = 0 and Nyquist planes once, the others twice.
    private static func objective(_ grid: InversionGrid, chi: [Float], chi1Hat: [Complex<Float>], delta: Float, mu: Float,
                                  scratch: inout [Complex<Float>]) -> Double {
        grid.forward(chi, into: &scratch)
        let hx = grid.shape.x / 2 + 1, nyquist = grid.shape.x % 2 == 0 ? hx - 1 : -1, n = Double(grid.count)
        let data = scratch.withUnsafeBufferPointer { sb in chi1Hat.withUnsafeBufferPointer { cb in
            grid.dipole.withUnsafeBufferPointer { db in
                let s = ReadPointer(sb.baseAddress!), c = ReadPointer(cb.baseAddress!), d = ReadPointer(db.baseAddress!)
                return chunkedSums(count: sb.count) { r in
                    var t = 0.0
                    for i in r where abs(d[i]) > delta {
                        let x = i % hx, re = Double(s[i].real - c[i].real), im = Double(s[i].imaginary - c[i].imaginary)
                        t += (x == 0 || x == nyquist ? 1 : 2) * (re * re + im * im)
                    }
                    return SIMD4(t, 0, 0, 0)
                }[0]
            }
        } }
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z)
        let hxInv = Float(1 / grid.voxelSize.x), hyInv = Float(1 / grid.voxelSize.y), hzInv = Float(1 / grid.voxelSize.z)
        let total = chi.withUnsafeBufferPointer { cb in
            let c = ReadPointer(cb.baseAddress!)
            return planeSums(count: nz) { z in
                var t = 0.0
                let zn = z + 1 == nz ? 0 : z + 1
                for y in 0..<ny {
                    let yn = y + 1 == ny ? 0 : y + 1
                    for x in 0..<nx {
                        let i = x + nx * (y + ny * z), v = c[i]
                        let dx = (c[(x + 1 == nx ? 0 : x + 1) + nx * (y + ny * z)] - v) * hxInv
                        let dy = (c[x + nx * (yn + ny * z)] - v) * hyInv, dz = (c[x + nx * (y + ny * zn)] - v) * hzInv
                        t += Double(abs(dx) + abs(dy) + abs(dz))
                    }
                }
                return SIMD4(t, 0, 0, 0)
            }[0]
        }
        return Double(mu) / 2 * data / n + total
    }
}

/// The split variables of RTS step 2: scaled duals u and v = z − u per axis (z = S(∇χ + u)).
private struct ADMMState {
    var ux, uy, uz: [Float]
    /// A division of u by γ still to be applied (by the next shrinkage pass, plane by plane in cache).
    var pendingDivisor: Float = 1

    /// Duals in three arrays of the grid's size whose contents the first `shrink` (`dualsZero`) ignores.
    init(ux: consuming [Float], uy: consuming [Float], uz: consuming [Float]) {
        self.ux = ux; self.uy = uy; self.uz = uz
    }

    /// Performs the z- and u-steps, sets `adjoint` ← ∇ᵀv (`shrinkPlanes`: v = z − u stays in
    /// per-thread plane buffers) and returns the primal residual Σ‖∇χ − z‖ (per z-plane sums added
    /// in plane order: the same for any thread count). `dualsZero`: u = 0, its arrays not read.
    mutating func shrink(_ grid: InversionGrid, chi: [Float], threshold t: Float, dualsZero: Bool, adjoint: inout [Float]) -> Double {
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z)
        let hx = Float(1 / grid.voxelSize.x), hy = Float(1 / grid.voxelSize.y), hz = Float(1 / grid.voxelSize.z)
        return adjoint.withUnsafeMutableBufferPointer { ab in chi.withUnsafeBufferPointer { cb in
            ux.withUnsafeMutableBufferPointer { uxb in uy.withUnsafeMutableBufferPointer { uyb in uz.withUnsafeMutableBufferPointer { uzb in
                    let c = ReadPointer(cb.baseAddress!), o = SendablePointer(ab.baseAddress!)
                    let ux = SendablePointer(uxb.baseAddress!), uy = SendablePointer(uyb.baseAddress!), uz = SendablePointer(uzb.baseAddress!)
                    let lanes = SIMD8<Float>.scalarCount
                    let vx8 = SIMD8<Float>(repeating: hx), vy8 = SIMD8<Float>(repeating: hy), vz8 = SIMD8<Float>(repeating: hz)
                    let t8 = SIMD8<Float>(repeating: t)
                    // v of plane z goes to plane-local buffers: index i − z·nx·ny.
                    let divisor = pendingDivisor
                    defer { pendingDivisor = 1 }
                    return shrinkPlanes(shape: grid.shape, steps: SIMD3(hx, hy, hz), adjoint: o) { z, vx, vy, vz in
                        let offset = nx * ny * z
                        if divisor != 1 && !dualsZero {
                            for i in offset..<offset + nx * ny { ux[i] /= divisor; uy[i] /= divisor; uz[i] /= divisor }
                        }
                        // Eight voxels at a time while x + 1 stays in the row, then the row's tail
                        // (periodic x neighbour) one by one; lane sums are Double, added in lane order.
                        var primal8 = SIMD8<Double>(), primal = 0.0
                        let zn = z + 1 == nz ? 0 : z + 1
                        for y in 0..<ny {
                            let yn = y + 1 == ny ? 0 : y + 1
                            let row = nx * (y + ny * z), rowY = nx * (yn + ny * z), rowZ = nx * (y + ny * zn)
                            var x = 0
                            while x + lanes < nx {
                                let i = row + x, value = c.vector(at: i)
                                let dx = (c.vector(at: i + 1) - value) * vx8
                                let dy = (c.vector(at: rowY + x) - value) * vy8, dz = (c.vector(at: rowZ + x) - value) * vz8
                                // S_t(a) = a − clamp(a, −t, t) and u ← a − S_t(a) = clamp(a, −t, t).
                                var a = dualsZero ? dx : ux.vector(at: i) + dx, u = lanewiseClamp(a, t8), s = a - u
                                ux.setVector(u, at: i); vx.setVector(s - u, at: i - offset); let rx = dx - s
                                a = dualsZero ? dy : uy.vector(at: i) + dy; u = lanewiseClamp(a, t8); s = a - u
                                uy.setVector(u, at: i); vy.setVector(s - u, at: i - offset); let ry = dy - s
                                a = dualsZero ? dz : uz.vector(at: i) + dz; u = lanewiseClamp(a, t8); s = a - u
                                uz.setVector(u, at: i); vz.setVector(s - u, at: i - offset); let rz = dz - s
                                primal8 += widened((rx * rx + ry * ry + rz * rz).squareRoot())
                                x += lanes
                            }
                            for x in x..<nx {
                                let i = row + x, value = c[i]
                                let dx = (c[row + (x + 1 == nx ? 0 : x + 1)] - value) * hx
                                let dy = (c[rowY + x] - value) * hy, dz = (c[rowZ + x] - value) * hz
                                var a = dualsZero ? dx : ux[i] + dx, u = min(max(a, -t), t), s = a - u
                                ux[i] = u; vx[i - offset] = s - u; let rx = dx - s
                                a = dualsZero ? dy : uy[i] + dy; u = min(max(a, -t), t); s = a - u
                                uy[i] = u; vy[i - offset] = s - u; let ry = dy - s
                                a = dualsZero ? dz : uz[i] + dz; u = min(max(a, -t), t); s = a - u
                                uz[i] = u; vz[i - offset] = s - u; let rz = dz - s
                                primal += Double((rx * rx + ry * ry + rz * rz).squareRoot())
                            }
                        }
                        return SIMD4(primal + primal8.sum(), 0, 0, 0)
                    }[0]
            } } }
        } }
    }

    /// ρ grew by γ: scaled duals shrink by γ, so v = z − u gains (1 − 1/γ)·u. Both are left to the
    /// passes that read u anyway: the next χ-step's load (`loadAdjoint`) and shrinkage.
    mutating func rescale(by growth: Float) {
        precondition(pendingDivisor == 1)
        pendingDivisor = growth
    }

    /// Runs `body` with the χ-step's plane loader: plane z of ∇ᵀ(z − u) from `work`, plus
    /// (1 − 1/γ)·∇ᵀu (u before its division) when ρ has just grown by γ.
    func loadAdjoint(_ grid: InversionGrid, work: [Float],
                     _ body: (@Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void) -> Void) {
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z), planeSize = nx * ny
        let steps = SIMD3(Float(1 / grid.voxelSize.x), Float(1 / grid.voxelSize.y), Float(1 / grid.voxelSize.z))
        let gain = 1 - 1 / pendingDivisor
        work.withUnsafeBufferPointer { wb in
            ux.withUnsafeBufferPointer { uxb in uy.withUnsafeBufferPointer { uyb in uz.withUnsafeBufferPointer { uzb in
                let w = ReadPointer(wb.baseAddress!)
                guard gain != 0 else {
                    body { z, plane in plane.baseAddress!.update(from: w.base + z * planeSize, count: planeSize) }
                    return
                }
                let ux = SendablePointer(UnsafeMutablePointer(mutating: uxb.baseAddress!))
                let uy = SendablePointer(UnsafeMutablePointer(mutating: uyb.baseAddress!))
                let uz = SendablePointer(UnsafeMutablePointer(mutating: uzb.baseAddress!))
                body { z, plane in
                    let offset = z * planeSize, below = (z == 0 ? nz - 1 : z - 1) * planeSize, out = plane.baseAddress!
                    gradientAdjointPlane(nx: nx, ny: ny, steps: steps, ux.base + offset, uy.base + offset, uz.base + offset,
                                         below: uz.base + below, into: out)
                    for i in 0..<planeSize { out[i] = w[offset + i] + gain * out[i] }
                }
            } } }
        }
    }
}

