import QSMCore

/// One `--set stage.parameter=value` assignment.
public struct ParameterSetting: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The stage whose selected method receives the value.
    public var stage: StageKind
    /// The parameter's Swift property name.
    public var parameter: String
    /// The value as written.
    public var value: String

    /// An assignment from its parts.
    public init(stage: StageKind, parameter: String, value: String) {
        self.stage = stage
        self.parameter = parameter
        self.value = value
    }

    /// Parses `stage.parameter=value`; the stage is one of mask, unwrap, combine, bgremove, inversion, reference.
    public init(parsing text: String) throws(QSMError) {
        guard let equals = text.firstIndex(of: "=") else {
            throw .invalidOption("--set", "'\(text)' is not stage.parameter=value")
        }
        let key = text[..<equals], value = text[text.index(after: equals)...]
        guard let dot = key.firstIndex(of: "."), !value.isEmpty else {
            throw .invalidOption("--set", "'\(text)' is not stage.parameter=value")
        }
        let stageText = String(key[..<dot]), parameter = String(key[key.index(after: dot)...])
        guard let stage = StageKind(rawValue: stageText) else {
            let stages = StageKind.allCases.map(\.key).joined(separator: ", ")
            throw .invalidOption("--set", "'\(stageText)' is not a stage; use one of \(stages)")
        }
        guard !parameter.isEmpty else { throw .invalidOption("--set", "'\(text)' names no parameter") }
        self.init(stage: stage, parameter: parameter, value: String(value))
    }

    public var description: String { "\(stage.key).\(parameter)=\(value)" }
}

/// A registered method as `list methods` shows it.
public struct MethodDescription: Sendable, Codable, Equatable {
    /// The stage it belongs to.
    public var kind: StageKind
    /// Registry name (`vsharp`).
    public var name: String
    /// One-line summary with the original paper.
    public var summary: String
    /// Parameters with defaults, valid ranges and documentation.
    public var parameters: [ParameterDescription]
}

/// Name → method for every stage, with parameter schemas; builds configured method instances.
public enum MethodRegistry {
    static let maskingMethods: [any MaskingMethod.Type] = [ThresholdMask.self]
    static let unwrappingMethods: [any PhaseUnwrapping.Type] = [LaplacianUnwrapping.self, RegionGrowingUnwrapping.self]
    static let combinationMethods: [any EchoCombination.Type] = [WeightedLinearFit.self]
    static let backgroundMethods: [any BackgroundRemoval.Type] =
        [SHARP.self, VSHARP.self, RESHARP.self, ISMV.self, PDF.self, LBV.self]
    static let inversionMethods: [any DipoleInversion.Type] =
        [TKD.self, TSVD.self, Tikhonov.self, LSQR.self, ILSQR.self, TVADMM.self, RTS.self, NDI.self, MEDI.self, TGV.self]
    static let referencingMethods: [any Referencing.Type] = [MeanReference.self]

    /// Every registered method in stage order.
    public static var methods: [MethodDescription] {
        let all: [any Stage.Type] = maskingMethods + unwrappingMethods + combinationMethods
            + backgroundMethods + inversionMethods + referencingMethods
        return all.map { describe($0) }
    }

    /// Registered names of one stage's methods.
    public static func names(of kind: StageKind) -> [String] { methods.filter { $0.kind == kind }.map(\.name) }

    /// The masking method `name` with `settings` for the mask stage applied and validated.
    public static func masking(_ name: String, settings: [ParameterSetting] = []) throws(QSMError) -> any MaskingMethod {
        func make<M: MaskingMethod>(_ type: M.Type) throws(QSMError) -> any MaskingMethod { try configured(type, settings) }
        let type = try find(name, .masking, in: maskingMethods)
        return try make(type)
    }

    /// The unwrapping method `name`, configured.
    public static func unwrapping(_ name: String, settings: [ParameterSetting] = []) throws(QSMError) -> any PhaseUnwrapping {
        func make<M: PhaseUnwrapping>(_ type: M.Type) throws(QSMError) -> any PhaseUnwrapping { try configured(type, settings) }
        let type = try find(name, .unwrapping, in: unwrappingMethods)
        return try make(type)
    }

    /// The echo-combination method `name`, configured.
    public static func combination(_ name: String, settings: [ParameterSetting] = []) throws(QSMError) -> any EchoCombination {
        func make<M: EchoCombination>(_ type: M.Type) throws(QSMError) -> any EchoCombination { try configured(type, settings) }
        let type = try find(name, .combination, in: combinationMethods)
        return try make(type)
    }

    /// The background-removal method `name`, configured.
    public static func backgroundRemoval(_ name: String, settings: [ParameterSetting] = []) throws(QSMError) -> any BackgroundRemoval {
        func make<M: BackgroundRemoval>(_ type: M.Type) throws(QSMError) -> any BackgroundRemoval { try configured(type, settings) }
        let type = try find(name, .backgroundRemoval, in: backgroundMethods)
        return try make(type)
    }

    /// The dipole-inversion method `name`, configured.
    public static func inversion(_ name: String, settings: [ParameterSetting] = []) throws(QSMError) -> any DipoleInversion {
        func make<M: DipoleInversion>(_ type: M.Type) throws(QSMError) -> any DipoleInversion { try configured(type, settings) }
        let type = try find(name, .inversion, in: inversionMethods)
        return try make(type)
    }

    /// The referencing method `name`, configured.
    public static func referencing(_ name: String, settings: [ParameterSetting] = []) throws(QSMError) -> any Referencing {
        func make<M: Referencing>(_ type: M.Type) throws(QSMError) -> any Referencing { try configured(type, settings) }
        let type = try find(name, .referencing, in: referencingMethods)
        return try make(type)
    }

    // MARK: Implementation details

    private static func describe<M: Stage>(_ type: M.Type) -> MethodDescription {
        MethodDescription(kind: M.kind, name: M.name, summary: M.summary, parameters: M.Parameters.descriptions)
    }

    private static func find<T>(_ name: String, _ kind: StageKind, in list: [T]) throws(QSMError) -> T {
        let key = name.lowercased()
        for type in list {
            if let stage = type as? any Stage.Type, stageName(stage) == key { return type }
        }
        let known = names(of: kind).joined(separator: ", ")
        throw .invalidOption(optionName(kind), "'\(name)' is not a known \(kind.key) method; use one of \(known)")
    }

    private static func stageName<M: Stage>(_ type: M.Type) -> String { M.name }

    private static func configured<M: Stage>(_ type: M.Type, _ settings: [ParameterSetting]) throws(QSMError) -> M {
        var parameters = M.Parameters()
        for s in settings where s.stage == M.kind {
            try parameters.setParameter(s.parameter, to: s.value, stage: M.kind.key)
        }
        try parameters.validate(stage: M.kind.key)
        return M(parameters)
    }

    /// The `qsmbench run` option that selects a method of `kind` (CLI.md).
    static func optionName(_ kind: StageKind) -> String {
        switch kind {
        case .masking: return "--mask-method"
        case .unwrapping: return "--unwrap"
        case .combination: return "--combine"
        case .backgroundRemoval: return "--bgremove"
        case .inversion: return "--inversion"
        case .referencing: return "--reference"
        }
    }
}
