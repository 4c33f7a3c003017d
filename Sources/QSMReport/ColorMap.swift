/// A piecewise-linear colour map over a value window; values outside the window are clamped.
public struct ColorMap: Sendable, Equatable {
    /// Colours at equally spaced stops from the window's lower end (first) to its upper end (last).
    public let stops: [RGBColor]
    /// Value drawn with the first stop (e.g. ppm).
    public var lower: Double
    /// Value drawn with the last stop.
    public var upper: Double
    /// Unit shown on the colour bar, e.g. "ppm".
    public var unit: String
    /// Colour of NaN and ±∞ voxels, so that they are never mistaken for a value.
    public var nonFiniteColor = RGBColor(255, 0, 255)

    /// A map with the given stops (at least two) over `lower…upper` (lower < upper).
    public init(stops: [RGBColor], lower: Double, upper: Double, unit: String) throws(QSMError) {
        guard stops.count >= 2 else { throw .invalidParameter("colour map", "needs at least two colour stops") }
        guard lower.isFinite, upper.isFinite, lower < upper else {
            throw .invalidParameter("colour map", "window \(lower)…\(upper) is not an increasing finite range")
        }
        self.stops = stops
        self.lower = lower
        self.upper = upper
        self.unit = unit
    }

    /// Linear grey from black (lower) to white (upper).
    public static func grey(lower: Double, upper: Double, unit: String = "ppm") throws(QSMError) -> ColorMap {
        try ColorMap(stops: [.black, .white], lower: lower, upper: upper, unit: unit)
    }

    /// Blue (negative) – white (zero) – red (positive), symmetric about zero: ±`limit`.
    ///
    /// Stops are ColorBrewer's five-class RdBu scheme (Harrower M, Brewer CA. The Cartographic
    /// Journal 2003;40:27–37. doi:10.1179/000870403235002042), reversed so that blue is negative;
    /// it stays readable for the common forms of colour blindness.
    public static func diverging(limit: Double, unit: String = "ppm") throws(QSMError) -> ColorMap {
        try ColorMap(stops: [RGBColor(0x05, 0x71, 0xB0), RGBColor(0x92, 0xC5, 0xDE), RGBColor(0xF7, 0xF7, 0xF7),
                             RGBColor(0xF4, 0xA5, 0x82), RGBColor(0xCA, 0x00, 0x20)],
                     lower: -limit, upper: limit, unit: unit)
    }

    /// The colour of `value`.
    public func color(for value: Double) -> RGBColor {
        guard value.isFinite else { return nonFiniteColor }
        let t = min(max((value - lower) / (upper - lower), 0), 1) * Double(stops.count - 1)
        let index = min(Int(t), stops.count - 2)
        return stops[index].interpolated(to: stops[index + 1], t - Double(index))
    }
}
