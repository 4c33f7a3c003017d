/// A GitHub-flavoured Markdown table with padded columns, so the raw text reads as a table too.
public struct MarkdownTable: Sendable, Equatable {
    /// Horizontal alignment of a column.
    public enum Alignment: Sendable, Equatable {
        /// Left aligned (`:---`).
        case left
        /// Centred (`:---:`).
        case center
        /// Right aligned (`---:`), for numbers.
        case right
    }

    /// Column headings.
    public let header: [String]
    /// One alignment per column.
    public let alignments: [Alignment]
    /// Body rows, each with one cell per column.
    public private(set) var rows: [[String]] = []

    /// A table with `header`; alignments default to left.
    public init(header: [String], alignments: [Alignment]? = nil) throws(QSMError) {
        guard !header.isEmpty else { throw .invalidParameter("Markdown table", "has no columns") }
        let alignments = alignments ?? Array(repeating: .left, count: header.count)
        guard alignments.count == header.count else {
            throw .mismatch("Markdown table", "\(alignments.count) alignments for \(header.count) columns")
        }
        self.header = header
        self.alignments = alignments
    }

    /// Appends a row of one cell per column.
    public mutating func append(_ row: [String]) throws(QSMError) {
        guard row.count == header.count else {
            throw .mismatch("Markdown table", "row \(rows.count + 1) has \(row.count) cells for \(header.count) columns")
        }
        rows.append(row)
    }

    /// A cell's text made safe inside a table: `|` escaped, line breaks as `<br>`.
    public static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "|": out += "\\|"
            case "\r\n", "\n", "\r": out += "<br>"
            default: out.append(character)
            }
        }
        return out
    }

    /// The table as Markdown lines, each ending in a newline.
    public func render() -> String {
        let cells = ([header] + rows).map { $0.map(Self.escape) }
        // Width in characters (grapheme clusters), so "±" and "χ" count as one column.
        let widths = header.indices.map { column in max(3, cells.map { $0[column].count }.max() ?? 0) }
        func pad(_ text: String, _ width: Int, _ alignment: Alignment) -> String {
            let gap = width - text.count
            switch alignment {
            case .left: return text + String(repeating: " ", count: gap)
            case .right: return String(repeating: " ", count: gap) + text
            case .center:
                return String(repeating: " ", count: gap / 2) + text + String(repeating: " ", count: gap - gap / 2)
            }
        }
        func line(_ row: [String]) -> String {
            "| " + row.indices.map { pad(row[$0], widths[$0], alignments[$0]) }.joined(separator: " | ") + " |\n"
        }
        let rule = "| " + header.indices.map { column -> String in
            let width = widths[column]
            switch alignments[column] {
            case .left: return ":" + String(repeating: "-", count: width - 1)
            case .right: return String(repeating: "-", count: width - 1) + ":"
            case .center: return ":" + String(repeating: "-", count: width - 2) + ":"
            }
        }.joined(separator: " | ") + " |\n"
        return line(cells[0]) + rule + cells.dropFirst().map(line).joined()
    }
}
