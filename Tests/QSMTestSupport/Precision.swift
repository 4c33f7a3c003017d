/// The two floating-point precisions numerical tests run in.
public enum Precision: String, CaseIterable, Sendable, CustomStringConvertible {
    case single, double
    public var description: String { rawValue }
}
