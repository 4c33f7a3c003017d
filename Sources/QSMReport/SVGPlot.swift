import Foundation
import QSMIO

/// A standalone SVG line plot of a metric against a swept parameter: one line per method, with
/// error bars, "nice" axis ticks, a legend, a title and axis labels.
///
/// Colours are the Okabe–Ito palette, distinguishable with common colour-vision deficiencies
/// (Okabe M, Ito K. Color Universal Design, 2008; https://jfly.uni-koeln.de/color/); after eight
/// series the colours repeat with dashed lines. Non-finite points are left out and break the line.
public struct SVGPlot: Sendable {
    /// One measurement: x, y, and an optional error bar from `lower` to `upper`.
    public struct Point: Sendable, Equatable {
        /// Swept parameter value.
        public var x: Double
        /// Metric value (e.g. a mean).
        public var y: Double
        /// Lower end of the error bar, if any.
        public var lower: Double?
        /// Upper end of the error bar, if any.
        public var upper: Double?

        /// A point with an optional error bar.
        public init(x: Double, y: Double, lower: Double? = nil, upper: Double? = nil) {
            self.x = x
            self.y = y
            self.lower = lower
            self.upper = upper
        }

        /// A point at the interval's mean with its bounds as the error bar.
        public init(x: Double, interval: ConfidenceInterval) {
            self.init(x: x, y: interval.mean,
                      lower: interval.halfWidth.isFinite ? interval.lower : nil,
                      upper: interval.halfWidth.isFinite ? interval.upper : nil)
        }
    }

    /// One line: a method's points, drawn in x order.
    public struct Series: Sendable, Equatable {
        /// Legend text.
        public var name: String
        /// The points.
        public var points: [Point]

        /// A series from its parts.
        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
    }

    /// Heading above the plot.
    public var title: String
    /// Label under the x axis (with unit).
    public var xLabel: String
    /// Label beside the y axis (with unit).
    public var yLabel: String
    /// The lines.
    public var series: [Series]
    /// Logarithmic x axis (all x must be positive).
    public var logarithmicX = false
    /// Width of the drawing in CSS pixels.
    public var width = 640
    /// Height of the drawing in CSS pixels.
    public var height = 400

    /// A plot of `series`.
    public init(title: String, xLabel: String, yLabel: String, series: [Series], logarithmicX: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logarithmicX = logarithmicX
    }

    private static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    /// The plot area inside the margins (title above, tick labels below and left, legend right).
    private var area: (left: Double, right: Double, top: Double, bottom: Double) {
        (70, Double(width) - 170, 40, Double(height) - 56)
    }

    /// The drawing as an SVG document.
    public func render() throws(QSMError) -> String {
        guard width >= 300, height >= 200 else {
            throw .invalidParameter("plot", "size \(width)×\(height) is smaller than 300×200")
        }
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !finite.isEmpty else { throw .invalidParameter("plot \"\(title)\"", "has no finite points") }
        if logarithmicX, let bad = finite.first(where: { $0.x <= 0 }) {
            throw .invalidParameter("plot \"\(title)\"", "x = \(bad.x) cannot go on a logarithmic axis")
        }
        let xs = finite.map(\.x)
        let ys = finite.flatMap { [$0.y, $0.lower, $0.upper].compactMap { $0 }.filter(\.isFinite) }
        let xTicks = logarithmicX
            ? try AxisTicks.logarithmic(covering: xs.min()!, xs.max()!)
            : try AxisTicks.linear(covering: xs.min()!, xs.max()!)
        let yTicks = try AxisTicks.linear(covering: ys.min()!, ys.max()!)
        let a = area
        func px(_ x: Double) -> Double {
            let t = logarithmicX
                ? (log10(x) - log10(xTicks.lower)) / (log10(xTicks.upper) - log10(xTicks.lower))
                : (x - xTicks.lower) / (xTicks.upper - xTicks.lower)
            return a.left + t * (a.right - a.left)
        }
        func py(_ y: Double) -> Double {
            a.bottom - (y - yTicks.lower) / (yTicks.upper - yTicks.lower) * (a.bottom - a.top)
        }

        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="#ffffff"/>
        <text class="title" x="\(n(Double(width) / 2))" y="24" text-anchor="middle" font-size="15" \
        font-weight="bold">\(title.xmlEscaped)</text>

        """
        svg += "<g class=\"axes\" stroke-width=\"1\">\n"
        for (value, label) in zip(xTicks.values, xTicks.labels) {
            let x = n(px(value))
            svg += "<line class=\"grid\" x1=\"\(x)\" y1=\"\(n(a.top))\" x2=\"\(x)\" y2=\"\(n(a.bottom))\" stroke=\"#e0e0e0\"/>\n"
            svg += "<text class=\"x-tick\" x=\"\(x)\" y=\"\(n(a.bottom + 16))\" text-anchor=\"middle\">\(label.xmlEscaped)</text>\n"
        }
        for (value, label) in zip(yTicks.values, yTicks.labels) {
            let y = n(py(value))
            svg += "<line class=\"grid\" x1=\"\(n(a.left))\" y1=\"\(y)\" x2=\"\(n(a.right))\" y2=\"\(y)\" stroke=\"#e0e0e0\"/>\n"
            svg += "<text class=\"y-tick\" x=\"\(n(a.left - 6))\" y=\"\(y)\" text-anchor=\"end\" "
                + "dominant-baseline=\"central\">\(label.xmlEscaped)</text>\n"
        }
        svg += "<rect class=\"frame\" x=\"\(n(a.left))\" y=\"\(n(a.top))\" width=\"\(n(a.right - a.left))\" "
            + "height=\"\(n(a.bottom - a.top))\" fill=\"none\" stroke=\"#000000\"/>\n"
        svg += "<text class=\"x-label\" x=\"\(n((a.left + a.right) / 2))\" y=\"\(n(Double(height) - 12))\" "
            + "text-anchor=\"middle\">\(xLabel.xmlEscaped)</text>\n"
        let yMiddle = n((a.top + a.bottom) / 2)
        svg += "<text class=\"y-label\" x=\"18\" y=\"\(yMiddle)\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 18 \(yMiddle))\">\(yLabel.xmlEscaped)</text>\n</g>\n"

        for (index, line) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            let dash = index >= Self.palette.count ? " stroke-dasharray=\"6 3\"" : ""
            svg += "<g class=\"series\" data-name=\"\(line.name.xmlEscaped)\" stroke=\"\(color)\" fill=\"\(color)\">\n"
            let points = line.points.sorted { $0.x < $1.x }
            // Split at non-finite points so a diverged run shows as a gap, not a straight bridge.
            var run: [String] = []
            func flush() {
                if run.count >= 2 {
                    svg += "<polyline class=\"line\" fill=\"none\" stroke-width=\"2\"\(dash) points=\"\(run.joined(separator: " "))\"/>\n"
                }
                run = []
            }
            for point in points {
                guard point.x.isFinite, point.y.isFinite else { flush(); continue }
                run.append("\(n(px(point.x))),\(n(py(point.y)))")
            }
            flush()
            for point in points where point.x.isFinite && point.y.isFinite {
                let x = px(point.x)
                if let lower = point.lower, let upper = point.upper, lower.isFinite, upper.isFinite {
                    let top = n(py(upper)), bottom = n(py(lower))
                    svg += "<path class=\"error-bar\" fill=\"none\" stroke-width=\"1.5\" d=\"M\(n(x)) \(top)V\(bottom)"
                        + "M\(n(x - 4)) \(top)H\(n(x + 4))M\(n(x - 4)) \(bottom)H\(n(x + 4))\"/>\n"
                }
                svg += "<circle class=\"marker\" cx=\"\(n(x))\" cy=\"\(n(py(point.y)))\" r=\"3.5\"/>\n"
            }
            svg += "</g>\n"
        }

        svg += "<g class=\"legend\">\n"
        for (index, line) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            let dash = index >= Self.palette.count ? " stroke-dasharray=\"6 3\"" : ""
            let y = a.top + 10 + Double(index) * 20
            let x = a.right + 16
            svg += "<line x1=\"\(n(x))\" y1=\"\(n(y))\" x2=\"\(n(x + 24))\" y2=\"\(n(y))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            svg += "<circle cx=\"\(n(x + 12))\" cy=\"\(n(y))\" r=\"3.5\" fill=\"\(color)\"/>\n"
            svg += "<text x=\"\(n(x + 30))\" y=\"\(n(y + 4))\">\(line.name.xmlEscaped)</text>\n"
        }
        svg += "</g>\n</svg>\n"
        return svg
    }

    /// A coordinate with two decimals (a hundredth of a CSS pixel is below any display's resolution).
    private func n(_ value: Double) -> String { String(format: "%.2f", value) }

    /// Writes the SVG file atomically to `path`.
    public func write(to path: String) throws(QSMError) {
        try AtomicFile.write(Array(try render().utf8), to: path)
    }
}
