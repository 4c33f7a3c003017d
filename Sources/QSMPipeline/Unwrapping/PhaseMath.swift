/// wrap(x) into [−π, π).
@inline(__always) func wrapPhase(_ x: Float) -> Float {
    let twoPi = 2 * Float.pi
    return x - twoPi * (x / twoPi).rounded()
}

/// wrap(x) into [−π, π), Double.
@inline(__always) func wrapPhase(_ x: Double) -> Double {
    x - 2 * Double.pi * (x / (2 * Double.pi)).rounded()
}
