import QSMCore

/// `--filter` expressions: comma-separated terms that must all match a run.
///
/// A term is `field=pattern` (field: phantom, protocol, pipeline, seed; `*` matches any text) or a
/// bare text that must occur in the run identifier `phantom/protocol/pipeline/seed-N`.
public struct RunFilter: Sendable {
    private var terms: [(field: String?, pattern: String)]

    /// Parses `expression`; throws for an unknown field.
    public init(_ expression: String) throws(QSMError) {
        terms = []
        for raw in expression.split(separator: ",") {
            let term = String(raw)
            if let equals = term.firstIndex(of: "=") {
                let field = String(term[..<equals])
                guard ["phantom", "protocol", "pipeline", "seed"].contains(field) else {
                    throw .invalidOption("--filter", "unknown field '\(field)'; use phantom, protocol, pipeline or seed")
                }
                terms.append((field, String(term[term.index(after: equals)...])))
            } else {
                terms.append((nil, term))
            }
        }
    }

    /// Whether `run` matches every term.
    public func matches(_ run: RunSpec) -> Bool {
        terms.allSatisfy { term in
            switch term.field {
            case "phantom": return Self.glob(term.pattern, run.phantom.name)
            case "protocol": return Self.glob(term.pattern, run.acquisition.name)
            case "pipeline": return Self.glob(term.pattern, run.pipeline.name)
            case "seed": return Self.glob(term.pattern, "\(run.seed)")
            default: return run.identifier.contains(term.pattern)
            }
        }
    }

    /// Whole-text match with `*` as any run of characters.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == text }
        guard text.hasPrefix(parts[0]) else { return false }
        var rest = text.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        let last = parts.last!
        return last.isEmpty || (rest.hasSuffix(last) && rest.count >= last.count)
    }
}
