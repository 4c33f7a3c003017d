/// wrap(x) into [−π, π).
@inline(__always) func wrapPhase(_ x: Float) -> Float {
    let twoPi = 2 * Float.pi
    return x - twoPi * (x / twoPi).rounded()
}

/// wrap(x) into [−π, π), Double.
@inline(__always) func wrapPhase(_ x: Double) -> Double {
    x - 2 * Double.pi * (x / (2 * Double.pi)).rounded()
}

/// wrap(d) for a difference of two wrapped phases, |d| < 3π in practice: one compare and add
/// instead of a rounding division; falls back to `wrapPhase` for larger values.
@inline(__always) func wrapDifference(_ d: Float) -> Float {
    let pi = Float.pi
    if d > pi { return d < 3 * pi ? d - 2 * pi : wrapPhase(d) }
    if d < -pi { return d > -3 * pi ? d + 2 * pi : wrapPhase(d) }
    return d
}
