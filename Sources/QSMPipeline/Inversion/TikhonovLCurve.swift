import QSMCore

/// The L-curve of closed-form Tikhonov over a log grid of λ, and the λ at its corner.
///
/// Hansen PC, O'Leary DP. SIAM J Sci Comput 1993;14:1487–1503, doi:10.1137/0914086 (corner =
/// maximum curvature of the log–log curve). For QSM's closed form both norms are sums over
/// k-space (Parseval), so a whole sweep costs one FFT: Bilgic B et al. MRM 2014;72:1444–1459,
/// doi:10.1002/mrm.25029. Norms are over the whole padded grid (χ_λ unmasked), as there.
public struct TikhonovLCurve: Sendable {
    /// One λ of the sweep.
    public struct Point: Sendable {
        /// Regularisation weight λ.
        public let lambda: Double
        /// ‖Dχ_λ − f‖ over the padded grid, ppm·√voxel.
        public let residualNorm: Double
        /// ‖Γχ_λ‖ over the padded grid (Γ = ∇ carries 1/mm).
        public let regularizerNorm: Double
        /// Signed curvature of (log residual, log regulariser) against log λ; 0 at the grid ends.
        public let curvature: Double
    }

    /// The sweep, λ ascending.
    public let points: [Point]
    /// Index in `points` of the maximum curvature (the corner).
    public let cornerIndex: Int

    /// λ at the corner.
    public var lambda: Double { points[cornerIndex].lambda }
    /// False when the curvature maximum sits at either end of the grid (no corner inside it).
    public var cornerIsInterior: Bool { cornerIndex > 1 && cornerIndex < points.count - 2 }

    /// The default sweep: 31 values, 6 per decade, from 1e-5 to 1.
    public static let defaultLambdas: [Double] = (0...30).map { Double.pow(10, -5 + Double($0) / 6) }
}

extension Tikhonov {
    /// The L-curve of `regularizer` for `localField` (ppm) inside `mask` over `lambdas` (≥ 3 values,
    /// positive, ascending); `padding` as the method's parameter.
    public static func lCurve(localField: Volume<Float>, mask: Mask, context: StageContext,
                              regularizer: Regularizer, padding: Int = 0,
                              lambdas: [Double] = TikhonovLCurve.defaultLambdas) throws(QSMError) -> TikhonovLCurve {
        try InputCheck.field(localField, mask: mask, name: "local field")
        guard lambdas.count >= 3, lambdas.allSatisfy({ $0 > 0 && $0.isFinite }),
              zip(lambdas, lambdas.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw .invalidParameter("tikhonov lambdas", "need at least 3 positive values in ascending order")
        }
        guard padding >= 0 else { throw .invalidParameter("tikhonov padding", "must be ≥ 0, got \(padding)") }
        let grid = try InversionGrid(localField.grid, padding: padding, context: context,
                                     withLaplacian: regularizer != .identity)
        var spectrum = grid.spectrumBuffer()
        grid.forward(grid.pad(localField.voxels, mask: mask.voxels), into: &spectrum)
        return curve(grid, spectrum: spectrum, regularizer: regularizer, lambdas: lambdas)
    }

    /// The sweep on a transformed field (unnormalised FFT; 1/N applied to the norms).
    static func curve(_ grid: InversionGrid, spectrum: [Complex<Float>], regularizer: Regularizer,
                      lambdas: [Double]) -> TikhonovLCurve {
        let power = regularizer.symbolPower
        let hx = grid.shape.x / 2 + 1, nyquist = grid.shape.x % 2 == 0 ? hx - 1 : -1, n = Double(grid.count)
        var norms = [(Double, Double)]()
        spectrum.withUnsafeBufferPointer { sb in grid.dipole.withUnsafeBufferPointer { db in
            grid.laplacian.withUnsafeBufferPointer { lb in
                let s = ReadPointer(sb.baseAddress!), d = ReadPointer(db.baseAddress!)
                let l = lb.baseAddress.map { ReadPointer($0) }
                for lambda in lambdas {
                    // X = D F/(D² + λG): residual D X − F = −λG F/(D² + λG), regulariser G|X|².
                    let sums = chunkedSums(count: sb.count) { r in
                        var residual = 0.0, penalty = 0.0
                        for i in r {
                            let x = i % hx, weight: Double = x == 0 || x == nyquist ? 1 : 2
                            let dk = Double(d[i]), g = Self.symbol(power, l?[i])
                            let magnitude = Double(s[i].real) * Double(s[i].real) + Double(s[i].imaginary) * Double(s[i].imaginary)
                            let denominator = dk * dk + lambda * g
                            if denominator > 0 {
                                let a = lambda * g / denominator, b = dk / denominator
                                residual += weight * a * a * magnitude
                                penalty += weight * g * b * b * magnitude
                            } else {
                                residual += weight * magnitude    // χ is set to 0 where D² + λG = 0
                            }
                        }
                        return SIMD4(residual, penalty, 0, 0)
                    }
                    norms.append(((sums[0] / n).squareRoot(), (sums[1] / n).squareRoot()))
                }
            }
        } }
        // Curvature of (ρ, η) = (log residual, log regulariser) in t = log λ, central differences
        // on the uniform-in-t grid when it is uniform; the general three-point formulas otherwise.
        let t = lambdas.map { Double.log($0) }
        let rho = norms.map { Double.log(max($0.0, .leastNormalMagnitude)) }
        let eta = norms.map { Double.log(max($0.1, .leastNormalMagnitude)) }
        var curvature = [Double](repeating: 0, count: lambdas.count)
        for i in 1..<(lambdas.count - 1) {
            let h0 = t[i] - t[i - 1], h1 = t[i + 1] - t[i]
            func first(_ y: [Double]) -> Double {
                (-h1 / (h0 * (h0 + h1))) * y[i - 1] + ((h1 - h0) / (h0 * h1)) * y[i] + (h0 / (h1 * (h0 + h1))) * y[i + 1]
            }
            func second(_ y: [Double]) -> Double {
                2 * (y[i - 1] / (h0 * (h0 + h1)) - y[i] / (h0 * h1) + y[i + 1] / (h1 * (h0 + h1)))
            }
            let r1 = first(rho), r2 = second(rho), e1 = first(eta), e2 = second(eta)
            let speed = (r1 * r1 + e1 * e1)
            curvature[i] = speed > 0 ? (r1 * e2 - r2 * e1) / (speed * speed.squareRoot()) : 0
        }
        // The corner turns the curve from falling η to rising ρ: counter-clockwise, κ > 0.
        var corner = 1
        for i in 1..<(lambdas.count - 1) where curvature[i] > curvature[corner] { corner = i }
        let points = lambdas.indices.map {
            TikhonovLCurve.Point(lambda: lambdas[$0], residualNorm: norms[$0].0, regularizerNorm: norms[$0].1,
                                 curvature: curvature[$0])
        }
        return TikhonovLCurve(points: points, cornerIndex: corner)
    }

    /// |Γ̂|² from −∇²'s eigenvalue `l` (nil for the identity).
    @inline(__always)
    static func symbol(_ power: Int, _ l: Float?) -> Double {
        switch power { case 0: 1; case 1: Double(l!); default: Double(l!) * Double(l!) }
    }
}

extension Tikhonov.Regularizer {
    /// |Γ̂|² = (eigenvalue of −∇²)^power.
    var symbolPower: Int { switch self { case .identity: 0; case .gradient: 1; case .laplacian: 2 } }
}
