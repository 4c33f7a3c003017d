import Foundation

/// Tick positions and labels for a plot axis: "nice" steps of 1, 2 or 5 × 10^k, or decades.
///
/// The linear ticks follow Heckbert's loose labelling (Heckbert PS. Nice numbers for graph
/// labels. In: Glassner AS, ed. Graphics Gems. Academic Press; 1990:61–63): the axis is widened
/// to whole steps so that every data point lies inside it and both ends carry a label.
public struct AxisTicks: Sendable, Equatable {
    /// Tick values, increasing; the first and last are the axis ends.
    public let values: [Double]
    /// Tick labels, one per value, with as many decimals as the step needs.
    public let labels: [String]

    /// Lower end of the axis.
    public var lower: Double { values.first! }
    /// Upper end of the axis.
    public var upper: Double { values.last! }

    /// About `count` (≥ 2) evenly stepped ticks whose range covers `minimum…maximum`.
    ///
    /// A zero-width range is widened (by 10 % of its value, or ±1 around zero) so it still gets an axis.
    public static func linear(covering minimum: Double, _ maximum: Double, count: Int = 5) throws(QSMError) -> AxisTicks {
        guard minimum.isFinite, maximum.isFinite, minimum <= maximum else {
            throw .invalidParameter("axis", "range \(minimum)…\(maximum) is not a finite increasing range")
        }
        var low = minimum, high = maximum
        if low == high {
            let pad = low == 0 ? 1 : abs(low) * 0.1
            low -= pad
            high += pad
        }
        let range = niceNumber(high - low, rounding: false)
        let step = niceNumber(range / Double(max(count, 2) - 1), rounding: true)
        let first = (low / step).rounded(.down), last = (high / step).rounded(.up)
        let decimals = max(0, -Int((log10(step)).rounded(.down)))
        // Ticks are k·step for integer k, so rounding errors cannot accumulate along the axis.
        let values = stride(from: first, through: last, by: 1).map { k -> Double in
            let value = k * step
            return abs(value) < step * 1e-9 ? 0 : value
        }
        return AxisTicks(values: values, labels: values.map { label($0, decimals: decimals) })
    }

    /// Ticks at powers of ten covering `minimum…maximum` (both > 0); when that spans at most two
    /// decades, 2× and 5× ticks are added and the axis ends at the ticks nearest outside the data.
    public static func logarithmic(covering minimum: Double, _ maximum: Double) throws(QSMError) -> AxisTicks {
        guard minimum.isFinite, maximum.isFinite, minimum > 0, minimum <= maximum else {
            throw .invalidParameter("axis", "range \(minimum)…\(maximum) is not positive, as a logarithmic axis needs")
        }
        let lowDecade = Int(log10(minimum).rounded(.down))
        var highDecade = Int(log10(maximum).rounded(.up))
        if highDecade == lowDecade { highDecade += 1 }
        let multiples: [Double] = highDecade - lowDecade <= 2 ? [1, 2, 5] : [1]
        var values: [Double] = [], labels: [String] = []
        for decade in lowDecade...highDecade {
            for multiple in multiples where decade < highDecade || multiple == 1 {
                let value = multiple * pow(10, Double(decade))
                values.append(value)
                labels.append(abs(decade) <= 5 ? label(value, decimals: max(0, -decade)) : "\(Int(multiple))e\(decade)")
            }
        }
        // With 2× and 5× ticks the axis can end at the ticks just outside the data (5…50 rather
        // than 1…100), which wastes less of the plot on a short sweep.
        let first = values.lastIndex { $0 <= minimum * (1 + 1e-12) } ?? 0
        var last = values.firstIndex { $0 >= maximum * (1 - 1e-12) } ?? values.count - 1
        if last == first { last = min(first + 1, values.count - 1) }  // a single value still needs an axis
        return AxisTicks(values: Array(values[first...last]), labels: Array(labels[first...last]))
    }

    /// The nice number (1, 2, 5 or 10 × 10^k) nearest `x` when rounding, else the smallest ≥ `x`.
    static func niceNumber(_ x: Double, rounding: Bool) -> Double {
        let exponent = log10(x).rounded(.down)
        let power = pow(10, exponent)
        let fraction = x / power
        let nice: Double
        if rounding {
            nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * power
    }

    private static func label(_ value: Double, decimals: Int) -> String {
        let text = String(format: "%.\(decimals)f", value)
        // "-0.0" can appear from rounding a tiny negative; show it as zero.
        return Double(text) == 0 ? String(format: "%.\(decimals)f", 0.0) : text
    }
}
