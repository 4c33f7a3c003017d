import QSMCore

/// LSMR for min‖Ax − b‖ with A real and diagonal, acting on interleaved complex k-space vectors.
///
/// Fong DC-L, Saunders M. "LSMR: An iterative algorithm for sparse least-squares problems."
/// SIAM J Sci Comput 2011;33:2950–2971. doi:10.1137/10079687X. Undamped (λ = 0); the iteration count
/// is the regulariser (RTS step 1 runs 4 iterations, QSM.md §7.7).
package enum DiagonalLSMR {
    /// x after `iterations` steps, starting from 0; `diagonal[k]` multiplies entries 2k and 2k+1.
    package static func solve(diagonal: [Float], rhs b: [Float], iterations: Int) -> [Float] {
        precondition(b.count == 2 * diagonal.count)
        var x = VoxelLoop.zeros(b.count)
        diagonal.withUnsafeBufferPointer { d in b.withUnsafeBufferPointer { rhs in
            x.withUnsafeMutableBufferPointer { solve(diagonal: d, rhs: rhs, iterations: iterations, into: $0) }
        } }
        return x
    }

    /// As `solve(diagonal:rhs:iterations:)`, writing x into `x` (overwritten).
    ///
    /// Every pass is parallel over fixed chunks and its norms are added in chunk order, so x does
    /// not depend on the thread count. Normalisations are fused into the pass that next reads the
    /// vector, and each iteration's update pass also forms the next iteration's ũ = Av − αu and β:
    /// two passes per iteration, with the arithmetic of the textbook order.
    /// `workspace`, when given, holds the four work vectors (each rhs.count long, contents ignored);
    /// otherwise they are allocated here.
    static func solve(diagonal: UnsafeBufferPointer<Float>, rhs: UnsafeBufferPointer<Float>, iterations: Int,
                      into x: UnsafeMutableBufferPointer<Float>, workspace: [UnsafeMutableBufferPointer<Float>]? = nil) {
        let n = rhs.count
        precondition(x.count == n && diagonal.count * 2 == n)
        precondition(workspace.map { $0.count == 4 && $0.allSatisfy { $0.count >= n } } ?? true)
        let owned = workspace == nil ? UnsafeMutablePointer<Float>.allocate(capacity: 4 * n) : nil
        defer { owned?.deallocate() }
        let vectors = workspace?.map { $0.baseAddress! } ?? (0..<4).map { owned! + $0 * n }
        let u = SendablePointer(vectors[0]), v = SendablePointer(vectors[1]), h = SendablePointer(vectors[2])
        let hBar = SendablePointer(vectors[3]), out = SendablePointer(x.baseAddress!)
        let d = ReadPointer(diagonal.baseAddress!), b = ReadPointer(rhs.baseAddress!)

        var beta = chunkedSums(count: n) { r in
            var s = 0.0
            for i in r { s += Double(b[i]) * Double(b[i]) }
            return SIMD4(s, 0, 0, 0)
        }[0].squareRoot()
        guard beta > 0 else {
            parallelFor(0..<n) { r in for i in r { out[i] = 0 } }
            return
        }
        // u = b/β; ṽ = Aᵀu (A is diagonal and real, Aᵀ = A); α = ‖ṽ‖; x and h̄ start at 0.
        let uScale = Float(1 / beta)
        var alpha = chunkedSums(count: n) { r in
            var s = 0.0
            for i in r {
                out[i] = 0; hBar[i] = 0
                let value = b[i] * uScale
                u[i] = value
                let w = value * d[i >> 1]
                v[i] = w
                s += Double(w) * Double(w)
            }
            return SIMD4(s, 0, 0, 0)
        }[0].squareRoot()
        guard alpha > 0 else { return }
        var alphaBar = alpha, zetaBar = alpha * beta, rho = 1.0, rhoBar = 1.0, cBar = 1.0, sBar = 0.0
        // v = ṽ/α, h = v; then the first ũ = Av − αu and β = ‖ũ‖.
        let vScale = Float(1 / alpha), a0 = Float(alpha)
        beta = chunkedSums(count: n) { r in
            var s = 0.0
            for i in r {
                let vi = v[i] * vScale
                v[i] = vi; h[i] = vi
                let value = vi * d[i >> 1] - a0 * u[i]
                u[i] = value
                s += Double(value) * Double(value)
            }
            return SIMD4(s, 0, 0, 0)
        }[0].squareRoot()

        for iteration in 0..<iterations {
            // Bidiagonalisation (ũ and β from the previous pass): u = ũ/β, ṽ = Aᵀu − βv, α = ‖ṽ‖.
            let bScale: Float = beta > 0 ? Float(1 / beta) : 1, bf = Float(beta)
            alpha = chunkedSums(count: n) { r in
                var s = 0.0
                for i in r {
                    let ui = u[i] * bScale
                    u[i] = ui
                    let value = ui * d[i >> 1] - bf * v[i]
                    v[i] = value
                    s += Double(value) * Double(value)
                }
                return SIMD4(s, 0, 0, 0)
            }[0].squareRoot()
            // Rotations.
            let rhoOld = rho
            rho = (alphaBar * alphaBar + beta * beta).squareRoot()
            let c = alphaBar / rho, s = beta / rho
            let theta = s * alpha
            alphaBar = c * alpha
            let rhoBarOld = rhoBar
            let thetaBar = sBar * rho
            let cRho = cBar * rho
            rhoBar = (cRho * cRho + theta * theta).squareRoot()
            cBar = cRho / rhoBar
            sBar = theta / rhoBar
            let zeta = cBar * zetaBar
            zetaBar = -sBar * zetaBar
            // v = ṽ/α, then the updates of h̄, x, h; unless this is the last iteration (or the
            // bidiagonalisation ended), the next ũ = Av − αu and β = ‖ũ‖ in the same pass.
            let more = iteration + 1 < iterations && beta != 0 && alpha != 0
            let vScale: Float = alpha > 0 ? Float(1 / alpha) : 1
            let hBarScale = Float(thetaBar * rho / (rhoOld * rhoBarOld))
            let xScale = Float(zeta / (rho * rhoBar))
            let hScale = Float(theta / rho)
            let a = Float(alpha)
            let next = chunkedSums(count: n) { r in
                var sum = 0.0
                for i in r {
                    let vi = v[i] * vScale
                    v[i] = vi
                    let hb = h[i] - hBarScale * hBar[i]
                    hBar[i] = hb
                    out[i] += xScale * hb
                    h[i] = vi - hScale * h[i]
                    if more {
                        let value = vi * d[i >> 1] - a * u[i]
                        u[i] = value
                        sum += Double(value) * Double(value)
                    }
                }
                return SIMD4(sum, 0, 0, 0)
            }[0].squareRoot()
            if !more { break }
            beta = next
        }
    }
}
