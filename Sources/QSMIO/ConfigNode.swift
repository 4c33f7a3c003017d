import Foundation
import Yams

/// A YAML (or JSON) configuration value that remembers where it stood, for errors naming file, line and key.
public struct ConfigNode: Sendable {
    /// The kinds of value.
    public enum Value: Sendable {
        /// A scalar as written (numbers and booleans are parsed on request).
        case scalar(String)
        /// Key–value pairs in document order.
        case mapping([(key: String, node: ConfigNode)])
        /// A list.
        case sequence([ConfigNode])
    }

    /// The value.
    public let value: Value
    /// 1-based line in the file.
    public let line: Int
    /// Dotted key path from the document root (`pipelines[2].inversion.threshold`).
    public let path: String
    /// The file the node came from.
    public let file: String

    /// Parses a YAML document; a syntax error names the file and line.
    public static func parse(yaml text: String, file: String) throws(QSMError) -> ConfigNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw .invalidFile(file, "YAML syntax error: " + Self.describe(error))
        } catch {
            throw .invalidFile(file, "YAML syntax error: \(error)")
        }
        guard let root else { throw .invalidFile(file, "is empty") }
        return ConfigNode(root, path: "", file: file)
    }

    /// Reads and parses a YAML file.
    public static func read(_ path: String) throws(QSMError) -> ConfigNode {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidFile(path, FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .invalidFile(path, "is not UTF-8 text") }
        return try parse(yaml: text, file: path)
    }

    private init(_ node: Node, path: String, file: String) {
        self.line = node.mark?.line ?? 0
        self.path = path
        self.file = file
        switch node {
        case .scalar(let scalar):
            value = .scalar(scalar.string)
        case .mapping(let mapping):
            value = .mapping(mapping.map { pair in
                let key = pair.key.scalar?.string ?? "\(pair.key)"
                return (key, ConfigNode(pair.value, path: path.isEmpty ? key : path + "." + key, file: file))
            })
        case .sequence(let sequence):
            value = .sequence(sequence.enumerated().map { ConfigNode($1, path: "\(path)[\($0)]", file: file) })
        }
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            let where_ = "line \(mark.line), column \(mark.column)"
            return "\(problem)\(context.map { " \($0.text)" } ?? "") at \(where_)"
        default:
            return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    // MARK: Typed access; every failure is `file:line: path: problem`.

    /// An error about this node.
    public func error(_ problem: String) -> QSMError {
        .invalidFile("\(file):\(line)", "\(path.isEmpty ? "document" : path): \(problem)")
    }

    /// The pairs of a mapping, rejecting keys outside `allowed` (when given).
    public func mapping(allowing allowed: Set<String>? = nil) throws(QSMError) -> [(key: String, node: ConfigNode)] {
        guard case .mapping(let pairs) = value else { throw error("expected a mapping (key: value)") }
        if let allowed {
            for pair in pairs where !allowed.contains(pair.key) {
                throw pair.node.error("unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
        }
        var seen = Set<String>()
        for pair in pairs where !seen.insert(pair.key).inserted { throw pair.node.error("duplicate key") }
        return pairs
    }

    /// The value under `key` of a mapping, if present.
    public subscript(key: String) -> ConfigNode? {
        if case .mapping(let pairs) = value { return pairs.first { $0.key == key }?.node }
        return nil
    }

    /// The elements of a list; a single value counts as a list of one.
    public func list() -> [ConfigNode] {
        if case .sequence(let items) = value { return items }
        return [self]
    }

    /// Whether this is a list.
    public var isList: Bool { if case .sequence = value { return true } else { return false } }

    /// The scalar text.
    public func string() throws(QSMError) -> String {
        guard case .scalar(let text) = value else { throw error("expected a single value") }
        return text
    }

    /// A number (`inf` and `.inf` allowed when `allowInfinity`).
    public func double(allowInfinity: Bool = false) throws(QSMError) -> Double {
        let text = try string().trimmingCharacters(in: .whitespaces)
        if allowInfinity, ["inf", ".inf", "infinity"].contains(text.lowercased()) { return .infinity }
        guard let value = Double(text), value.isFinite else { throw error("'\(text)' is not a number") }
        return value
    }

    /// An integer.
    public func integer() throws(QSMError) -> Int {
        let text = try string().trimmingCharacters(in: .whitespaces)
        guard let value = Int(text) else { throw error("'\(text)' is not an integer") }
        return value
    }

    /// `true`/`false` (also yes/no, on/off).
    public func bool() throws(QSMError) -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let text: throw error("'\(text)' is not true or false")
        }
    }
}
