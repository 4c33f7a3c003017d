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

        let grid = try InversionGrid(localField.grid, padding: p.padding, context: context)
        let n = grid.count, h = grid.halfCount, scale = 1 / Float(n)

        // Step 1: LSMR in k-space on the diagonal operator D, on the spectrum's own memory
        // (Complex<Float> is two Floats, the interleaved layout LSMR expects). The padded masked field
        // is formed plane by plane inside the forward transform.
        var spectrum = grid.spectrumBuffer(), solution = grid.spectrumBuffer()
        grid.forwardPadded(localField.voxels, mask: mask.voxels, into: &spectrum)
        // LSMR's four work vectors (2·h Floats each, ≥ n) are kept afterwards for step 2's duals and
        // χ⁰, so their pages are faulted in once (a fresh 46 MB array costs about a third of an FFT).
        var work0 = uninitializedArray(count: 2 * h) { _ in }, work1 = uninitializedArray(count: 2 * h) { _ in }
        var work2 = uninitializedArray(count: 2 * h) { _ in }, work3 = uninitializedArray(count: 2 * h) { _ in }
        spectrum.withUnsafeBufferPointer { sb in solution.withUnsafeMutableBufferPointer { xb in
            work0.withUnsafeMutableBufferPointer { w0 in work1.withUnsafeMutableBufferPointer { w1 in
                work2.withUnsafeMutableBufferPointer { w2 in work3.withUnsafeMutableBufferPointer { w3 in
                    sb.withMemoryRebound(to: Float.self) { rhs in
                        xb.withMemoryRebound(to: Float.self) { x in
                            grid.dipole.withUnsafeBufferPointer {
                                DiagonalLSMR.solve(diagonal: $0, rhs: rhs, iterations: p.lsmrIterations, into: x, workspace: [w0, w1, w2, w3])
                            }
                        }
                    }
                } }
            } }
        } }
        // χ₁ = M·F⁻¹[x] (1/N folded into the mask pass, done as each output plane is written), then
        // F[χ₁] for step 2; the spectrum of f is no longer needed and serves as scratch.
        var chi = uninitializedArray(count: n) { _ in }
        let planeSize = grid.shape.x * grid.shape.y
        chi.withUnsafeMutableBufferPointer { cb in solution.withUnsafeBufferPointer { xb in
            spectrum.withUnsafeMutableBufferPointer { sb in mask.voxels.withUnsafeBufferPointer { mb in
                let c = SendablePointer(cb.baseAddress!), keep = ReadPointer(mb.baseAddress!)
                let (inner, outer, o) = (grid.original.shape, grid.shape, grid.offset)
                grid.fft.inverse(xb, scratch: sb, normalized: false, product: { _ in }, store: { z, plane in
                    // The padded mask is 0 outside the original grid, so only its planes and rows are read.
                    let out = c.base + z * planeSize
                    out.update(repeating: 0, count: planeSize)
                    guard (o.z..<o.z + inner.z).contains(z) else { return }
                    for y in 0..<inner.y {
                        let d = o.x + outer.x * (y + o.y), m = inner.x * (y + inner.y * (z - o.z))
                        for x in 0..<inner.x where keep[m + x] { out[d + x] = plane[d + x] * scale }
                    }
                })
            } }
        } }
        // LSMR's solution is spent: its memory takes F[χ₁].
        var chi1Hat = consume solution
        chi.withUnsafeBufferPointer { cb in
            let c = ReadPointer(cb.baseAddress!)
            chi1Hat.withUnsafeMutableBufferPointer { sb in
                grid.fft.forward(into: sb) { z, plane in plane.baseAddress!.update(from: c.base + z * planeSize, count: planeSize) }
            }
        }

        // Step 2: ADMM on the ill-conditioned cone. The χ-step is
        // F⁻¹[(μP·F[χ₁] + ρ·F[∇ᵀ(z − u)])/(μP + ρ|∇̂|²)] (`applySystem`, 1/N folded in).
        let delta = Float(p.threshold), mu = Float(p.mu)
        var rho = Float(p.rho)
        // Recording the objective costs one more FFT per iteration.
        var scratch = recordObjective ? grid.spectrumBuffer() : []
        var admm = ADMMState(reusing: consume work0, consume work1, consume work2, count: n)
        // Start from z − u = 0 and χ⁰ = 0 (as QSM.rs): the first χ-step is then the well-conditioned
        // part of χ₁, and the convergence test compares against it. Starting from z = ∇χ₁ (QSM.jl)
        // reproduces χ₁ minus its mean in the first step, so the 1e-2 test can stop before any TV step.
        // χ₁'s array is overwritten by the first χ-step; `previous` starts as χ⁰ = 0.
        var previous = zeros(reusing: consume work3, count: n)
        var residual = Double.infinity
        var log = IterationLog()
        // ∇ᵀ(z − u) for the χ-step: 0 at first, then formed by the shrinkage pass (corrected when ρ grows).
        var work = VoxelLoop.zeros(n)
        for iteration in 1...p.maxIterations {
            swap(&chi, &previous)
            grid.forward(work, into: &spectrum)
            Self.applySystem(grid, chi1Hat: chi1Hat, rho: rho, delta: delta, mu: mu, scale: scale, to: &spectrum)
            grid.rawInverse(&spectrum, into: &chi)
            // One fused pass: the change of χ and, unless this is the last iteration, ∇χ, the
            // shrinkage z = S_{1/ρ}(∇χ + u), the dual step u += ∇χ − z, the primal residual and the
            // next χ-step's ∇ᵀ(z − u).
            if recordObjective {
                log.objective.append(Self.objective(grid, chi: chi, chi1Hat: chi1Hat, delta: delta, mu: mu, scratch: &scratch))
            }
            let last = iteration == p.maxIterations
            let sums = admm.shrink(grid, chi: chi, previous: previous, threshold: 1 / rho, update: !last, adjoint: &work)
            let relative = sums[1] > 0 ? (sums[0] / sums[1]).squareRoot() : 0
            log.relativeChange.append(relative)
            log.iterations = iteration
            if relative < p.tolerance { log.converged = true; break }
            if last { break }
            let primal = sums[2]
            if primal > p.residualRatio * residual {
                let growth = Float(p.rhoGrowth)
                rho *= growth
                admm.rescaleDuals(by: growth, grid: grid, adjoint: &work)
            }
            residual = primal
        }
        // The crop is one parallel pass into `previous`'s storage (moving χ down in place is a serial
        // 46 MB copy at 256×256×176, a fresh array costs its page faults).
        return (grid.crop(chi, mask: mask, reusing: consume previous), log)
    }

    /// s ← (μP·F[χ₁] + ρ·s)·(1/N)/(μP + ρ|∇̂|²), 0 where the denominator is 0, P = 1{|D| > δ}.
    /// Formed from F[χ₁] each iteration, so nothing is recomputed when ρ grows.
    private static func applySystem(_ grid: InversionGrid, chi1Hat: [Complex<Float>], rho: Float, delta: Float, mu: Float,
                                    scale: Float, to spectrum: inout [Complex<Float>]) {
        spectrum.withUnsafeMutableBufferPointer { sb in chi1Hat.withUnsafeBufferPointer { cb in
            grid.dipole.withUnsafeBufferPointer { db in grid.laplacian.withUnsafeBufferPointer { lb in
                let s = SendablePointer(sb.baseAddress!), c = ReadPointer(cb.baseAddress!)
                let d = ReadPointer(db.baseAddress!), l = ReadPointer(lb.baseAddress!)
                // Four complex values (eight Floats) at a time, the per-k factors duplicated per
                // real/imaginary pair; the same arithmetic as the scalar tail.
                let floats = SendablePointer(UnsafeMutableRawPointer(sb.baseAddress!).assumingMemoryBound(to: Float.self))
                let fixed = ReadPointer(UnsafeRawPointer(cb.baseAddress!).assumingMemoryBound(to: Float.self))
                let delta8 = SIMD8<Float>(repeating: delta), mu8 = SIMD8<Float>(repeating: mu)
                let rho8 = SIMD8<Float>(repeating: rho), scale8 = SIMD8<Float>(repeating: scale)
                parallelFor(0..<sb.count) { r in
                    var i = r.lowerBound
                    while i + 4 <= r.upperBound {
                        let dk = SIMD8<Float>(d[i], d[i], d[i + 1], d[i + 1], d[i + 2], d[i + 2], d[i + 3], d[i + 3])
                        let lk = SIMD8<Float>(l[i], l[i], l[i + 1], l[i + 1], l[i + 2], l[i + 2], l[i + 3], l[i + 3])
                        var wellConditioned = SIMD8<Float>()
                        wellConditioned.replace(with: mu8, where: lanewiseAbs(dk) .> delta8)
                        let a = wellConditioned + rho8 * lk
                        var k = scale8 / a
                        k.replace(with: 0, where: .!(a .> 0))
                        let f = fixed.vector(at: 2 * i)
                        floats.setVector((wellConditioned * f + rho8 * floats.vector(at: 2 * i)) * k, at: 2 * i)
                        i += 4
                    }
                    for i in i..<r.upperBound {
                        let wellConditioned: Float = abs(d[i]) > delta ? mu : 0
                        let a = wellConditioned + rho * l[i]
                        let k: Float = a > 0 ? scale / a : 0
                        let v = s[i], f = c[i]
                        s[i] = Complex((wellConditioned * f.real + rho * v.real) * k, (wellConditioned * f.imaginary + rho * v.imaginary) * k)
                    }
                }
            } }
        } }
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

    /// Duals u = 0 in three spent arrays of at least `count` elements.
    init(reusing x: consuming [Float], _ y: consuming [Float], _ z: consuming [Float], count: Int) {
        ux = zeros(reusing: consume x, count: count)
        uy = zeros(reusing: consume y, count: count)
        uz = zeros(reusing: consume z, count: count)
    }

    /// Returns (‖χ − previous‖², ‖χ‖², Σ‖∇χ − z‖) and, when `update`, performs the z- and u-steps
    /// and sets `adjoint` ← ∇ᵀv (`shrinkPlanes`: v = z − u stays in per-thread plane buffers). Sums
    /// are per z-plane, added in plane order: the same for any thread count.
    mutating func shrink(_ grid: InversionGrid, chi: [Float], previous: [Float], threshold t: Float, update: Bool,
                         adjoint: inout [Float]) -> SIMD4<Double> {
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z)
        let hx = Float(1 / grid.voxelSize.x), hy = Float(1 / grid.voxelSize.y), hz = Float(1 / grid.voxelSize.z)
        return adjoint.withUnsafeMutableBufferPointer { ab in chi.withUnsafeBufferPointer { cb in previous.withUnsafeBufferPointer { pb in
            ux.withUnsafeMutableBufferPointer { uxb in uy.withUnsafeMutableBufferPointer { uyb in uz.withUnsafeMutableBufferPointer { uzb in
                    let c = ReadPointer(cb.baseAddress!), old = ReadPointer(pb.baseAddress!), o = SendablePointer(ab.baseAddress!)
                    let ux = SendablePointer(uxb.baseAddress!), uy = SendablePointer(uyb.baseAddress!), uz = SendablePointer(uzb.baseAddress!)
                    let lanes = SIMD8<Float>.scalarCount
                    let vx8 = SIMD8<Float>(repeating: hx), vy8 = SIMD8<Float>(repeating: hy), vz8 = SIMD8<Float>(repeating: hz)
                    let t8 = SIMD8<Float>(repeating: t)
                    // v of plane z goes to plane-local buffers: index i − z·nx·ny.
                    let divisor = pendingDivisor
                    defer { pendingDivisor = 1 }
                    return shrinkPlanes(shape: grid.shape, steps: SIMD3(hx, hy, hz), adjoint: update ? o : nil) { z, vx, vy, vz in
                        let offset = nx * ny * z
                        if divisor != 1 {
                            for i in offset..<offset + nx * ny { ux[i] /= divisor; uy[i] /= divisor; uz[i] /= divisor }
                        }
                        // Eight voxels at a time while x + 1 stays in the row, then the row's tail
                        // (periodic x neighbour) one by one; lane sums are Double, added in lane order.
                        var change8 = SIMD8<Double>(), size8 = SIMD8<Double>(), primal8 = SIMD8<Double>()
                        var change = 0.0, size = 0.0, primal = 0.0
                        let zn = z + 1 == nz ? 0 : z + 1
                        for y in 0..<ny {
                            let yn = y + 1 == ny ? 0 : y + 1
                            let row = nx * (y + ny * z), rowY = nx * (yn + ny * z), rowZ = nx * (y + ny * zn)
                            var x = 0
                            while x + lanes < nx {
                                let i = row + x, value = c.vector(at: i)
                                let difference = value - old.vector(at: i)
                                change8 += SIMD8<Double>(difference * difference); size8 += SIMD8<Double>(value * value)
                                if update {
                                    let dx = (c.vector(at: i + 1) - value) * vx8
                                    let dy = (c.vector(at: rowY + x) - value) * vy8, dz = (c.vector(at: rowZ + x) - value) * vz8
                                    // S_t(a) = a − clamp(a, −t, t) and u ← a − S_t(a) = clamp(a, −t, t).
                                    var a = ux.vector(at: i) + dx, u = lanewiseClamp(a, t8), s = a - u
                                    ux.setVector(u, at: i); vx.setVector(s - u, at: i - offset); let rx = dx - s
                                    a = uy.vector(at: i) + dy; u = lanewiseClamp(a, t8); s = a - u
                                    uy.setVector(u, at: i); vy.setVector(s - u, at: i - offset); let ry = dy - s
                                    a = uz.vector(at: i) + dz; u = lanewiseClamp(a, t8); s = a - u
                                    uz.setVector(u, at: i); vz.setVector(s - u, at: i - offset); let rz = dz - s
                                    primal8 += SIMD8<Double>((rx * rx + ry * ry + rz * rz).squareRoot())
                                }
                                x += lanes
                            }
                            for x in x..<nx {
                                let i = row + x, value = c[i]
                                let difference = Double(value - old[i])
                                change += difference * difference; size += Double(value) * Double(value)
                                guard update else { continue }
                                let dx = (c[row + (x + 1 == nx ? 0 : x + 1)] - value) * hx
                                let dy = (c[rowY + x] - value) * hy, dz = (c[rowZ + x] - value) * hz
                                var a = ux[i] + dx, u = min(max(a, -t), t), s = a - u
                                ux[i] = u; vx[i - offset] = s - u; let rx = dx - s
                                a = uy[i] + dy; u = min(max(a, -t), t); s = a - u
                                uy[i] = u; vy[i - offset] = s - u; let ry = dy - s
                                a = uz[i] + dz; u = min(max(a, -t), t); s = a - u
                                uz[i] = u; vz[i - offset] = s - u; let rz = dz - s
                                primal += Double((rx * rx + ry * ry + rz * rz).squareRoot())
                            }
                        }
                        return SIMD4(change + change8.sum(), size + size8.sum(), primal + primal8.sum(), 0)
                    }
            } } }
        } } }
    }

    /// Scaled duals shrink by γ when ρ grows by γ, and v = z − u follows: v gains (1 − 1/γ)·u, so the
    /// χ-step's ∇ᵀv gains (1 − 1/γ)·∇ᵀu (formed from u before it shrinks). The division of u itself
    /// is left to the next shrinkage pass, which reads u anyway.
    mutating func rescaleDuals(by growth: Float, grid: InversionGrid, adjoint: inout [Float]) {
        precondition(pendingDivisor == 1)
        defer { pendingDivisor = growth }
        let (nx, ny, nz) = (grid.shape.x, grid.shape.y, grid.shape.z), planeSize = nx * ny
        let steps = SIMD3(Float(1 / grid.voxelSize.x), Float(1 / grid.voxelSize.y), Float(1 / grid.voxelSize.z))
        let gain = 1 - 1 / growth
        adjoint.withUnsafeMutableBufferPointer { ab in
            ux.withUnsafeMutableBufferPointer { uxb in uy.withUnsafeMutableBufferPointer { uyb in uz.withUnsafeMutableBufferPointer { uzb in
                let o = SendablePointer(ab.baseAddress!)
                let ux = SendablePointer(uxb.baseAddress!), uy = SendablePointer(uyb.baseAddress!), uz = SendablePointer(uzb.baseAddress!)
                parallelFor(0..<nz) { zs in
                    let plane = UnsafeMutablePointer<Float>.allocate(capacity: planeSize)
                    defer { plane.deallocate() }
                    for z in zs {
                        let offset = z * planeSize, below = (z == 0 ? nz - 1 : z - 1) * planeSize
                        gradientAdjointPlane(nx: nx, ny: ny, steps: steps, ux.base + offset, uy.base + offset, uz.base + offset,
                                             below: uz.base + below, into: plane)
                        for i in 0..<planeSize { o[offset + i] += gain * plane[i] }
                    }
                }
            } } }
        }
    }
}

/// `count` zeros in the storage of a spent array of at least `count` elements (zeroed in parallel,
/// then shortened in place): no fresh allocation and no new page faults.
private func zeros(reusing storage: consuming [Float], count: Int) -> [Float] {
    var out = consume storage
    precondition(out.count >= count)
    out.removeLast(out.count - count)
    out.withUnsafeMutableBufferPointer { b in
        let p = SendablePointer(b.baseAddress!)
        parallelFor(0..<b.count) { r in (p.base + r.lowerBound).update(repeating: 0, count: r.count) }
    }
    return out
}
