import ComplexModule

extension Complex {
    /// The complex value scaled by a real factor.
    @inlinable public static func * (lhs: Complex, rhs: RealType) -> Complex {
        Complex(lhs.real * rhs, lhs.imaginary * rhs)
    }
}
