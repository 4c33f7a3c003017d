import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import QSMReport
import Testing

/// Every element of an SVG document with its attributes and text, as XMLParser sees it.
final class ParsedSVG: NSObject, XMLParserDelegate {
    struct Element { var name: String; var attributes: [String: String]; var text = "" }
    private(set) var elements: [Element] = []
    private var open: [Int] = []

    init(_ svg: String) throws {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        guard parser.parse() else { throw parser.parserError ?? CocoaError(.fileReadCorruptFile) }
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        open.append(elements.count)
        elements.append(Element(name: name, attributes: attributes))
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let last = open.last { elements[last].text += string }
    }

    func all(_ name: String, class className: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (className == nil || $0.attributes["class"] == className) }
    }

    /// The coordinate `attribute` of the tick label reading `label`.
    func tick(_ className: String, _ label: String, _ attribute: String) throws -> Double {
        let element = try #require(all("text", class: className).first { $0.text == label })
        return try #require(Double(element.attributes[attribute] ?? ""))
    }
}

@Suite struct AxisTicksTests {
    /// Hand-worked Heckbert steps: range 10 → step nice(2.5) = 2; range 0.4 → step nice(0.125) = 0.1.
    @Test func linearTicksAreNiceAndCoverTheData() throws {
        let decimal = try AxisTicks.linear(covering: 0, 10)
        #expect(decimal.labels == ["0", "2", "4", "6", "8", "10"])
        let window = try AxisTicks.linear(covering: -0.15, 0.25)
        #expect(window.labels == ["-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"])
        #expect(window.values[2] == 0)  // exactly zero, not a rounding residue
        // A single value still gets an axis: 3 ± 10 % → 2.7…3.3 → step 0.2.
        #expect(try AxisTicks.linear(covering: 3, 3).labels == ["2.6", "2.8", "3.0", "3.2", "3.4"])
    }

    @Test func logarithmicTicksUseDecadesAndMultiples() throws {
        #expect(try AxisTicks.logarithmic(covering: 5, 40).labels == ["5", "10", "20", "50"])
        #expect(try AxisTicks.logarithmic(covering: 2, 2).labels == ["2", "5"])
        #expect(try AxisTicks.logarithmic(covering: 0.01, 1000).labels == ["0.01", "0.1", "1", "10", "100", "1000"])
        #expect(throws: QSMError.invalidParameter("axis", "range 0.0…1.0 is not positive, as a logarithmic axis needs")) {
            try AxisTicks.logarithmic(covering: 0, 1)
        }
    }
}

@Suite struct SVGPlotTests {
    static let awkwardName = "rts & \"tv\" <x>"

    static func plot() -> SVGPlot {
        SVGPlot(title: "NRMSE vs SNR <test>", xLabel: "SNR", yLabel: "NRMSE (%)", series: [
            .init(name: "tkd", points: [.init(x: 0, y: 1, lower: 0.5, upper: 1.5), .init(x: 5, y: 2, lower: 1.8, upper: 2.2),
                                        .init(x: 10, y: 3, lower: 2.5, upper: 3.5)]),
            .init(name: awkwardName, points: [.init(x: 0, y: 2), .init(x: 5, y: .nan), .init(x: 10, y: 2.5)]),
        ])
    }

    @Test func isWellFormedWithTheExpectedElements() throws {
        let svg = try Self.plot().render()
        let parsed = try ParsedSVG(svg)
        #expect(parsed.elements.first?.name == "svg")
        #expect(parsed.all("g", class: "series").count == 2)
        // tkd draws one line; the other series' NaN leaves two isolated points and no line.
        #expect(parsed.all("polyline", class: "line").count == 1)
        #expect(parsed.all("circle", class: "marker").count == 5)
        #expect(parsed.all("path", class: "error-bar").count == 3)
        #expect(parsed.all("text", class: "x-tick").map(\.text) == ["0", "2", "4", "6", "8", "10"])
        #expect(parsed.all("text", class: "y-tick").map(\.text) == ["0", "1", "2", "3", "4"])
        #expect(parsed.all("text", class: "title").first?.text == "NRMSE vs SNR <test>")
    }

    /// The marker of (5, 2) sits halfway between the x ticks "0" and "10" and level with the y tick "2".
    @Test func pointsLandOnTheAxes() throws {
        let parsed = try ParsedSVG(try Self.plot().render())
        let x0 = try parsed.tick("x-tick", "0", "x"), x10 = try parsed.tick("x-tick", "10", "x")
        let y2 = try parsed.tick("y-tick", "2", "y")
        let markers = parsed.all("circle", class: "marker").map { (Double($0.attributes["cx"]!)!, Double($0.attributes["cy"]!)!) }
        // Coordinates are printed with two decimals: 0.01 tolerance.
        #expect(markers.contains { abs($0.0 - (x0 + x10) / 2) < 0.01 && abs($0.1 - y2) < 0.01 })
        #expect(x10 > x0)
    }

    @Test func textIsEscaped() throws {
        let svg = try Self.plot().render()
        #expect(svg.contains("rts &amp; &quot;tv&quot; &lt;x&gt;"))
        #expect(!svg.contains("<x>") && !svg.contains("<test>"))
        let parsed = try ParsedSVG(svg)
        #expect(parsed.all("g", class: "series").last?.attributes["data-name"] == Self.awkwardName)
        #expect(parsed.all("text").contains { $0.text == Self.awkwardName })
    }

    /// On a log axis a decade has the same width everywhere: 1→10 equals 10→100.
    @Test func logarithmicAxisSpacesDecadesEqually() throws {
        let plot = SVGPlot(title: "t", xLabel: "SNR", yLabel: "y", series: [
            .init(name: "a", points: [1, 3, 10, 30, 100].map { .init(x: $0, y: $0 / 10) }),
        ], logarithmicX: true)
        let parsed = try ParsedSVG(try plot.render())
        let x1 = try parsed.tick("x-tick", "1", "x"), x10 = try parsed.tick("x-tick", "10", "x")
        let x100 = try parsed.tick("x-tick", "100", "x")
        #expect(abs((x10 - x1) - (x100 - x10)) < 0.02)
        let markerXs = parsed.all("circle", class: "marker").map { Double($0.attributes["cx"]!)! }
        #expect(markerXs.contains { abs($0 - x10) < 0.01 })
    }

    @Test func unusableDataThrows() {
        let bad = SVGPlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [.init(x: 0, y: 1)])],
                          logarithmicX: true)
        #expect(throws: QSMError.invalidParameter("plot \"t\"", "x = 0.0 cannot go on a logarithmic axis")) { try bad.render() }
        let empty = SVGPlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [.init(x: 0, y: .nan)])])
        #expect(throws: QSMError.invalidParameter("plot \"t\"", "has no finite points")) { try empty.render() }
    }
}
