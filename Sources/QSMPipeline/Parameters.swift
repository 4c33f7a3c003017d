import QSMCore

// How `--set stage.parameter=value` works: each `Parameters` struct lists a schema, one
// `ParameterSpec` per property, naming the Swift property, its valid range and its meaning. The
// schema parses text into the property (`setParameter`), checks ranges (`validate`, called by
// every `apply`), and describes itself for `list methods` (`descriptions`, defaults read from
// `Parameters()`). Codable conformance stores the same values in configuration files and HDF5.

/// An interval of real numbers with open or closed ends, printed as in mathematics: `(0, 2/3)`.
public struct Interval: Sendable, Equatable, CustomStringConvertible {
    /// Lower end (may be −∞).
    public var lower: Double
    /// Upper end (may be +∞).
    public var upper: Double
    /// Whether `lower` itself is allowed.
    public var lowerClosed: Bool
    /// Whether `upper` itself is allowed.
    public var upperClosed: Bool
    /// Text shown in messages instead of the numbers (e.g. "(0, 2/3)").
    public var text: String?

    /// An interval; closed ends by default.
    public init(_ lower: Double, _ upper: Double, lowerClosed: Bool = true, upperClosed: Bool = true,
                text: String? = nil) {
        self.lower = lower
        self.upper = upper
        self.lowerClosed = lowerClosed
        self.upperClosed = upperClosed
        self.text = text
    }

    /// (0, ∞): strictly positive numbers.
    public static let positive = Interval(0, .infinity, lowerClosed: false, upperClosed: false)
    /// [0, ∞): non-negative numbers.
    public static let nonNegative = Interval(0, .infinity, upperClosed: false)
    /// (0, 1): strictly between 0 and 1.
    public static let openUnit = Interval(0, 1, lowerClosed: false, upperClosed: false)

    /// Whether `value` lies inside (NaN never does).
    public func contains(_ value: Double) -> Bool {
        guard !value.isNaN else { return false }
        let aboveLower = lowerClosed ? value >= lower : value > lower
        let belowUpper = upperClosed ? value <= upper : value < upper
        return aboveLower && belowUpper
    }

    public var description: String {
        if let text { return text }
        func show(_ v: Double) -> String { v.isInfinite ? (v < 0 ? "-∞" : "∞") : "\(v)" }
        return "\(lowerClosed && lower.isFinite ? "[" : "(")\(show(lower)), \(show(upper))\(upperClosed && upper.isFinite ? "]" : ")")"
    }
}

/// One documented parameter of a method: reads, parses, range-checks and describes a property.
public struct ParameterSpec<Owner>: Sendable {
    /// The Swift property name, used in `--set stage.name=value`.
    public let name: String
    /// The valid values, as text (an interval, a list of choices, `true|false`).
    public let validRange: String
    /// Meaning, unit and the source of the default.
    public let documentation: String
    let read: @Sendable (Owner) -> String
    let write: @Sendable (inout Owner, String) -> String?   // nil on success, else the problem
    let check: @Sendable (Owner) -> String?                 // nil when valid, else the problem

    /// A real number that must lie in `interval`.
    public static func real(_ name: String, _ path: WritableKeyPath<Owner, Double> & Sendable,
                            in interval: Interval, _ documentation: String) -> ParameterSpec {
        ParameterSpec(
            name: name, validRange: interval.description, documentation: documentation,
            read: { "\($0[keyPath: path])" },
            write: { owner, text in
                guard let v = Double(text.trimmingWhitespace) else { return "'\(text)' is not a number" }
                owner[keyPath: path] = v
                return nil
            },
            check: { owner in
                let v = owner[keyPath: path]
                return interval.contains(v) ? nil : "\(v) is outside \(interval)"
            })
    }

    /// An integer that must lie in `range`.
    public static func integer(_ name: String, _ path: WritableKeyPath<Owner, Int> & Sendable,
                               in range: ClosedRange<Int>, _ documentation: String) -> ParameterSpec {
        let text = "[\(range.lowerBound), \(range.upperBound == Int.max ? "∞)" : "\(range.upperBound)]")"
        return ParameterSpec(
            name: name, validRange: text, documentation: documentation,
            read: { "\($0[keyPath: path])" },
            write: { owner, value in
                guard let v = Int(value.trimmingWhitespace) else { return "'\(value)' is not an integer" }
                owner[keyPath: path] = v
                return nil
            },
            check: { owner in
                let v = owner[keyPath: path]
                return range.contains(v) ? nil : "\(v) is outside \(text)"
            })
    }

    /// A Boolean, written `true` or `false`.
    public static func flag(_ name: String, _ path: WritableKeyPath<Owner, Bool> & Sendable,
                            _ documentation: String) -> ParameterSpec {
        ParameterSpec(
            name: name, validRange: "true|false", documentation: documentation,
            read: { "\($0[keyPath: path])" },
            write: { owner, text in
                switch text.trimmingWhitespace.lowercased() {
                case "true", "on", "yes", "1": owner[keyPath: path] = true
                case "false", "off", "no", "0": owner[keyPath: path] = false
                default: return "'\(text)' is not true or false"
                }
                return nil
            },
            check: { _ in nil })
    }

    /// One of the named cases of a string-backed enumeration.
    public static func choice<E: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _ path: WritableKeyPath<Owner, E> & Sendable, _ documentation: String
    ) -> ParameterSpec where E.RawValue == String {
        let names = E.allCases.map(\.rawValue).joined(separator: "|")
        return ParameterSpec(
            name: name, validRange: names, documentation: documentation,
            read: { $0[keyPath: path].rawValue },
            write: { owner, text in
                guard let v = E(rawValue: text.trimmingWhitespace.lowercased()) else {
                    return "'\(text)' is not one of \(names)"
                }
                owner[keyPath: path] = v
                return nil
            },
            check: { _ in nil })
    }
}

/// A parameter as `list methods` shows it.
public struct ParameterDescription: Sendable, Codable, Equatable {
    /// Property name (`threshold`).
    public var name: String
    /// Default value as text, read from `Parameters()`.
    public var defaultValue: String
    /// Valid values as text.
    public var validRange: String
    /// Meaning, unit and source of the default.
    public var documentation: String
}

/// A method's parameter set: Codable values plus a schema that validates and parses them.
public protocol MethodParameters: Codable, Equatable, Sendable {
    /// The literature defaults.
    init()
    /// One entry per property that `--set` may change.
    static var schema: [ParameterSpec<Self>] { get }
    /// Checks that involve several parameters; returns (parameter, problem) for the first failure.
    func relationProblem() -> (parameter: String, problem: String)?
}

extension MethodParameters {
    /// No cross-parameter constraints.
    public func relationProblem() -> (parameter: String, problem: String)? { nil }

    /// Throws `invalidParameter("<stage>.<name>", …)` for the first value outside its valid range.
    public func validate(stage: String) throws(QSMError) {
        for spec in Self.schema {
            if let problem = spec.check(self) { throw .invalidParameter("\(stage).\(spec.name)", problem) }
        }
        if let (name, problem) = relationProblem() { throw .invalidParameter("\(stage).\(name)", problem) }
    }

    /// Parses `text` into the parameter `name` (range checks happen in `validate`).
    public mutating func setParameter(_ name: String, to text: String, stage: String) throws(QSMError) {
        guard let spec = Self.schema.first(where: { $0.name == name }) else {
            let known = Self.schema.map(\.name).joined(separator: ", ")
            throw .invalidParameter("\(stage).\(name)", "unknown parameter\(known.isEmpty ? " (this method has none)" : "; known: \(known)")")
        }
        if let problem = spec.write(&self, text) { throw .invalidParameter("\(stage).\(name)", problem) }
    }

    /// The value of parameter `name` as text, or nil if there is no such parameter.
    public func parameterText(_ name: String) -> String? {
        Self.schema.first { $0.name == name }.map { $0.read(self) }
    }

    /// Every parameter with its default, range and documentation.
    public static var descriptions: [ParameterDescription] {
        let defaults = Self()
        return schema.map {
            ParameterDescription(name: $0.name, defaultValue: $0.read(defaults), validRange: $0.validRange,
                                 documentation: $0.documentation)
        }
    }
}

/// Parameters of a method that has none.
public struct NoParameters: MethodParameters {
    /// Nothing to set.
    public init() {}
    public static var schema: [ParameterSpec<NoParameters>] { [] }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
