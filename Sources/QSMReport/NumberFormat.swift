import Foundation

/// Text for numbers in reports: fixed significant digits, and "mean ± half-width" cells.
public enum NumberFormat {
    /// `value` rounded to `digits` (≥ 1) significant digits, trailing zeros kept ("0.0120").
    ///
    /// Fixed notation for 1e-4 ≤ |value| < 1e6, otherwise scientific ("1.23e-05"); NaN, ±∞ are
    /// "NaN", "inf", "-inf".
    public static func significant(_ value: Double, digits: Int = 3) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "inf" : "-inf") }
        let digits = max(1, digits)
        if value == 0 { return digits == 1 ? "0" : "0." + String(repeating: "0", count: digits - 1) }
        let exponent = decimalExponent(value, digits: digits)
        if exponent >= -4 && exponent < 6 {
            return fixed(value, decimals: max(0, digits - 1 - exponent), roundingTo: exponent - digits + 1)
        }
        return String(format: "%.\(digits - 1)e", value)
            .replacingOccurrences(of: "e+0", with: "e").replacingOccurrences(of: "e+", with: "e")
            .replacingOccurrences(of: "e-0", with: "e-")
    }

    /// "mean ± half-width", the half-width to two significant digits and the mean to the same
    /// decimal place (the GUM convention, JCGM 100:2008 §7.2.6); just the mean (to `digits`
    /// significant digits) when the half-width is NaN, e.g. for a single seed.
    public static func meanWithInterval(_ interval: ConfidenceInterval, digits: Int = 3) -> String {
        meanWithHalfWidth(interval.mean, interval.halfWidth, digits: digits)
    }

    /// "mean ± halfWidth" as in `meanWithInterval`.
    public static func meanWithHalfWidth(_ mean: Double, _ halfWidth: Double, digits: Int = 3) -> String {
        guard mean.isFinite, halfWidth.isFinite else { return significant(mean, digits: digits) }
        let halfWidth = abs(halfWidth)
        guard halfWidth > 0 else { return significant(mean, digits: digits) + " ± 0" }
        let exponent = decimalExponent(halfWidth, digits: 2)
        let decimals = 1 - exponent
        // Beyond six decimals fixed notation is unreadable; fall back to significant digits.
        guard decimals <= 6 else { return significant(mean, digits: digits) + " ± " + significant(halfWidth, digits: 2) }
        let place = exponent - 1
        return fixed(mean, decimals: max(0, decimals), roundingTo: place) + " ± "
            + fixed(halfWidth, decimals: max(0, decimals), roundingTo: place)
    }

    /// The power of ten of the leading digit of `value` after rounding to `digits` significant digits.
    private static func decimalExponent(_ value: Double, digits: Int) -> Int {
        var exponent = Int(log10(abs(value)).rounded(.down))
        // 9.996 to three digits is 10.0: rounding can carry into the next power of ten.
        let scaled = (abs(value) / pow(10, Double(exponent - digits + 1))).rounded()
        if scaled >= pow(10, Double(digits)) { exponent += 1 }
        return exponent
    }

    /// `value` rounded to a multiple of 10^place, printed with `decimals` decimals; never "-0".
    private static func fixed(_ value: Double, decimals: Int, roundingTo place: Int) -> String {
        let unit = pow(10, Double(place))
        var rounded = (value / unit).rounded() * unit
        if rounded == 0 { rounded = 0 }  // drops the sign of −0
        return String(format: "%.\(decimals)f", rounded)
    }
}
