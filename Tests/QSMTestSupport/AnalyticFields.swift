/// Closed-form Lorentz-corrected fields of uniformly magnetised objects (QSM.md §2.6), for tests.
///
/// Small-χ limit, χ outside = 0 unless stated, field in the unit of Δχ (ppm in, ppm out). Positions
/// are in mm relative to the object's centre (sphere) or to a point on its axis (cylinder).
public enum AnalyticFields {
    /// Field of a sphere of radius `radius` (mm) and susceptibility difference `deltaChi` at `point`.
    ///
    /// Inside 0; outside (Δχ/3)·(a/r)³·(3cos²θ − 1), θ the angle between the position and b̂.
    public static func sphere(at point: SIMD3<Double>, radius: Double, deltaChi: Double,
                              b0: SIMD3<Double>) -> Double {
        let b = b0 / (b0 * b0).sum().squareRoot()
        let r2 = (point * point).sum()
        guard r2 > radius * radius else { return 0 }
        let cos2 = ((point * b).sum() * (point * b).sum()) / r2
        let ratio = radius / r2.squareRoot()
        return deltaChi / 3 * ratio * ratio * ratio * (3 * cos2 - 1)
    }

    /// Field of an infinite cylinder (radius mm, unit `axis`) at `point`.
    ///
    /// Inside (Δχ/6)·(3cos²θ − 1); outside (Δχ/2)·sin²θ·(a/ρ)²·cos 2φ, θ = angle(axis, b̂), ρ the
    /// distance to the axis, φ the azimuth from b̂'s projection onto the plane normal to the axis.
    public static func cylinder(at point: SIMD3<Double>, radius: Double, deltaChi: Double,
                                axis: SIMD3<Double>, b0: SIMD3<Double>) -> Double {
        let b = b0 / (b0 * b0).sum().squareRoot()
        let a = axis / (axis * axis).sum().squareRoot()
        let cosTheta = (a * b).sum()
        let radial = point - (point * a).sum() * a
        let rho2 = (radial * radial).sum()
        if rho2 < radius * radius { return deltaChi / 6 * (3 * cosTheta * cosTheta - 1) }
        let perpendicular = b - cosTheta * a
        let p2 = (perpendicular * perpendicular).sum()
        guard p2 > 1e-24 else { return 0 }
        let cosPhi = (radial * perpendicular).sum() / (rho2 * p2).squareRoot()
        let sin2 = 1 - cosTheta * cosTheta
        return deltaChi / 2 * sin2 * radius * radius / rho2 * (2 * cosPhi * cosPhi - 1)
    }
}
