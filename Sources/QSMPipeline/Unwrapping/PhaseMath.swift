/// wrap(x) into [−π, π).
@inline(__always) func wrapPhase(_ x: Float) -> Float {
    let twoPi = 2 * Float.pi
    return x - twoPi * roundedHalfAway(x / twoPi)
}

/// wrap(x) into [−π, π), Double.
@inline(__always) func wrapPhase(_ x: Double) -> Double {
    x - 2 * Double.pi * roundedHalfAway(x / (2 * Double.pi))
}

/// x.rounded() (to nearest, ties away from zero, sign of zero kept), bit for bit, without the libm
/// call Swift emits for it on x86-64: a truncating conversion and a compare. Region growing rounds
/// once per edge and per unwrapped voxel, where the call cost ~10 % of the stage.
@inline(__always) func roundedHalfAway(_ x: Float) -> Float {
    guard abs(x) < 8_388_608 else { return x.rounded() }    // 2²³: integral already (or not finite)
    let t = Float(Int32(x))
    let r = x - t                                           // exact: |x| < 2²³
    let rounded = r >= 0.5 ? t + 1 : r <= -0.5 ? t - 1 : t
    return Float(signOf: x, magnitudeOf: rounded)
}

/// x.rounded() for Double, bit for bit (see the Float version).
@inline(__always) func roundedHalfAway(_ x: Double) -> Double {
    guard abs(x) < 4_503_599_627_370_496 else { return x.rounded() }    // 2⁵²
    let t = Double(Int64(x))
    let r = x - t
    let rounded = r >= 0.5 ? t + 1 : r <= -0.5 ? t - 1 : t
    return Double(signOf: x, magnitudeOf: rounded)
}

/// wrap(d) for a difference of two wrapped phases, |d| < 3π in practice: one compare and add
/// instead of a rounding division; falls back to `wrapPhase` for larger values.
@inline(__always) func wrapDifference(_ d: Float) -> Float {
    let pi = Float.pi
    if d > pi { return d < 3 * pi ? d - 2 * pi : wrapPhase(d) }
    if d < -pi { return d > -3 * pi ? d + 2 * pi : wrapPhase(d) }
    return d
}
