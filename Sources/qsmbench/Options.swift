import QSMCore

#if canImport(Glibc)
import Glibc
#endif

/// Parses `N` or `NX,NY,NZ` into a shape (CLI value format).
func parseShape(_ text: String, option: String) throws(QSMError) -> SIMD3<Int> {
    let parts = text.split(separator: ",").map { Int($0) }
    guard parts.allSatisfy({ $0 != nil && $0! > 0 }), parts.count == 1 || parts.count == 3 else {
        throw .invalidOption(option, "'\(text)' is not N or NX,NY,NZ with positive integers")
    }
    let v = parts.map { $0! }
    return v.count == 1 ? SIMD3(repeating: v[0]) : SIMD3(v[0], v[1], v[2])
}

/// Parses `X` or `X,Y,Z` into three positive doubles.
func parseTriple(_ text: String, option: String, positive: Bool = true) throws(QSMError) -> SIMD3<Double> {
    let parts = text.split(separator: ",").map { Double($0) }
    guard parts.allSatisfy({ $0 != nil && $0!.isFinite && (!positive || $0! > 0) }),
          parts.count == 1 || parts.count == 3 else {
        throw .invalidOption(option, "'\(text)' is not X or X,Y,Z\(positive ? " with positive numbers" : "")")
    }
    let v = parts.map { $0! }
    return v.count == 1 ? SIMD3(repeating: v[0]) : SIMD3(v[0], v[1], v[2])
}

/// A number with a fixed count of decimals.
func format(_ value: Double, digits: Int = 2) -> String {
    guard value.isFinite else { return "\(value)" }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let rounded = (value * p).rounded() / p
    var s = "\(rounded)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 { s += "." + String(repeating: "0", count: digits) }
    return s
}
