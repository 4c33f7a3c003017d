import QSMIO

/// A benchmark suite: phantoms × acquisition protocols × pipelines × seeds, read from YAML.
///
/// Lists in protocol fields and method parameters are sweeps/grids: each value becomes its own
/// protocol or pipeline. The format is documented in docs/BENCH.md.
public struct Suite: Sendable {
    /// The suite's name (default: the file name).
    public var name: String
    /// The file it was read from.
    public var file: String
    /// Phantoms to simulate.
    public var phantoms: [PhantomSpec]
    /// Acquisition protocols, sweeps expanded.
    public var protocols: [ProtocolSpec]
    /// Reconstruction pipelines, parameter grids expanded.
    public var pipelines: [PipelineSpec]
    /// Noise seeds (replicates).
    public var seeds: [UInt64]
    /// Also run each stage on ideal inputs (true total and local field) for per-stage attribution.
    public var attribution: Bool
    /// Metric convention name.
    public var convention: String
    /// Write χ and error volumes into results.h5.
    public var saveVolumes: Bool

    /// Every run of the suite, in a stable order (phantom, protocol, pipeline, seed).
    public var runs: [RunSpec] {
        var out: [RunSpec] = []
        for phantom in phantoms { for acquisition in protocols { for pipeline in pipelines { for seed in seeds {
            out.append(RunSpec(phantom: phantom, acquisition: acquisition, pipeline: pipeline, seed: seed))
        } } } }
        return out
    }
}

/// One phantom entry: a kind (`sphere`, `cylinder`, `head`, `chimap`) and its options.
public struct PhantomSpec: Sendable, Hashable, Codable {
    /// Phantom kind.
    public var kind: String
    /// Display name (default: the kind, with a suffix when the kind repeats).
    public var name: String
    /// Matrix size.
    public var matrix: SIMD3<Int>
    /// Voxel size, mm.
    public var voxelSize: SIMD3<Double>
    /// Kind-specific options as written (`chi`, `radius`, `angle`, `calcification`, file paths…).
    public var options: [String: String]
}

/// One acquisition protocol after sweep expansion.
public struct ProtocolSpec: Sendable, Hashable, Codable {
    /// Name (with the swept value appended when expanded from a sweep).
    public var name: String
    /// Field strength, T.
    public var fieldStrength: Double
    /// Echo times, s.
    public var echoTimes: [Double]
    /// Peak SNR per echo (∞ = noise-free).
    public var snr: Double
    /// Head rotation (degrees about x, y, z) relative to B0.
    public var rotationDegrees: SIMD3<Double>
    /// Acquired voxel size, mm (nil: the phantom's own); coarser sizes crop k-space.
    public var acquiredVoxelSize: SIMD3<Double>?
    /// Whether a smooth phase offset φ0 is added.
    public var phaseOffset: Bool
    /// The swept field and its value, for sweep plots (nil when not from a sweep).
    public var sweep: SweepPoint?
}

/// Which protocol field a sweep varies, and its value at this point.
public struct SweepPoint: Sendable, Hashable, Codable {
    /// `snr`, `b0`, `te`, `echoes`, `voxel` or `orientation`.
    public var parameter: String
    /// The numeric value plotted on the x axis (SNR, T, first TE in ms, echo count, mm, degrees).
    public var value: Double
    /// The protocol name before expansion.
    public var base: String
    /// A sweep point.
    public init(parameter: String, value: Double, base: String) {
        self.parameter = parameter
        self.value = value
        self.base = base
    }
}

/// A pipeline after grid expansion: a method per stage with parameter values as text.
public struct PipelineSpec: Sendable, Hashable, Codable {
    /// Name (with grid values appended when expanded).
    public var name: String
    /// Stage key (`mask`, `unwrap`, `combine`, `bgremove`, `inversion`, `reference`) → method.
    public var methods: [String: String]
    /// `stage.parameter` → value text, applied with the method's `--set` parser.
    public var parameters: [String: String]
    /// Line in the suite file, for errors found when methods are resolved.
    public var line: Int
    /// Line of each `stage` (method) and `stage.parameter` key in the suite file.
    public var lines: [String: Int] = [:]
    /// Key path of the pipeline entry in the suite (`pipelines[1]`).
    public var path: String = ""
}

/// One run: a phantom, a protocol, a pipeline and a seed.
public struct RunSpec: Sendable, Hashable, Codable {
    /// The phantom.
    public var phantom: PhantomSpec
    /// The acquisition protocol.
    public var acquisition: ProtocolSpec
    /// The pipeline.
    public var pipeline: PipelineSpec
    /// Noise seed.
    public var seed: UInt64

    /// A readable unique identifier: `phantom/protocol/pipeline/seed-N`.
    public var identifier: String { "\(phantom.name)/\(acquisition.name)/\(pipeline.name)/seed-\(seed)" }
}

extension Suite {
    static let stageKeys = ["mask", "unwrap", "combine", "bgremove", "inversion", "reference"]

    /// Reads and validates the structure of a suite file (methods are checked by the runner's registry).
    public static func read(_ path: String) throws(QSMError) -> Suite {
        try decode(try ConfigNode.read(path), file: path)
    }

    /// Decodes a parsed suite.
    public static func decode(_ root: ConfigNode, file: String) throws(QSMError) -> Suite {
        _ = try root.mapping(allowing: ["name", "description", "phantoms", "protocols", "pipelines", "seeds",
                                        "attribution", "convention", "save_volumes"])
        let name = try root["name"]?.string() ?? (file.split(separator: "/").last.map(String.init) ?? file)
        guard let phantomNodes = root["phantoms"]?.list(), !phantomNodes.isEmpty else {
            throw root.error("phantoms: at least one phantom is needed")
        }
        var phantoms: [PhantomSpec] = []
        for node in phantomNodes { phantoms.append(try decodePhantom(node, existing: phantoms)) }
        guard let protocolNodes = root["protocols"]?.list(), !protocolNodes.isEmpty else {
            throw root.error("protocols: at least one protocol is needed")
        }
        var protocols: [ProtocolSpec] = []
        for (i, node) in protocolNodes.enumerated() { protocols += try decodeProtocol(node, index: i) }
        guard let pipelineNodes = root["pipelines"]?.list(), !pipelineNodes.isEmpty else {
            throw root.error("pipelines: at least one pipeline is needed")
        }
        var pipelines: [PipelineSpec] = []
        for (i, node) in pipelineNodes.enumerated() { pipelines += try decodePipeline(node, index: i) }
        try requireUnique(protocols.map(\.name), root["protocols"]!, "protocol")
        try requireUnique(pipelines.map(\.name), root["pipelines"]!, "pipeline")

        var seeds: [UInt64] = [1]
        if let node = root["seeds"] {
            seeds = []
            for item in node.list() {
                let value = try item.integer()
                guard value >= 0 else { throw item.error("\(value) is not a non-negative seed") }
                seeds.append(UInt64(value))
            }
            guard !seeds.isEmpty else { throw node.error("at least one seed is needed") }
            guard Set(seeds).count == seeds.count else { throw node.error("seeds repeat") }
        }
        return Suite(name: name, file: file, phantoms: phantoms, protocols: protocols, pipelines: pipelines,
                     seeds: seeds, attribution: try root["attribution"]?.bool() ?? false,
                     convention: try root["convention"]?.string() ?? "default",
                     saveVolumes: try root["save_volumes"]?.bool() ?? false)
    }

    private static func requireUnique(_ names: [String], _ node: ConfigNode, _ what: String) throws(QSMError) {
        var seen = Set<String>()
        for n in names where !seen.insert(n).inserted { throw node.error("two \(what)s are named '\(n)'") }
    }

    private static func decodePhantom(_ node: ConfigNode, existing: [PhantomSpec]) throws(QSMError) -> PhantomSpec {
        let pairs = try node.mapping()
        guard let kindNode = node["phantom"] else { throw node.error("phantom: missing (sphere, cylinder, head or chimap)") }
        let kind = try kindNode.string()
        guard ["sphere", "cylinder", "head", "chimap"].contains(kind) else {
            throw kindNode.error("unknown phantom '\(kind)'; expected sphere, cylinder, head or chimap")
        }
        var matrix = SIMD3(repeating: 64), voxel = SIMD3<Double>(repeating: 1)
        if let m = node["matrix"] { matrix = try intTriple(m) }
        if let v = node["voxel"] { voxel = try doubleTriple(v) }
        var options: [String: String] = [:]
        for pair in pairs where !["phantom", "name", "matrix", "voxel"].contains(pair.key) {
            options[pair.key] = try pair.node.string()
        }
        let repeats = existing.filter { $0.kind == kind }.count
        let name = try node["name"]?.string() ?? (repeats == 0 ? kind : "\(kind)-\(repeats + 1)")
        guard !existing.contains(where: { $0.name == name }) else { throw node.error("two phantoms are named '\(name)'") }
        return PhantomSpec(kind: kind, name: name, matrix: matrix, voxelSize: voxel, options: options)
    }

    private static func decodeProtocol(_ node: ConfigNode, index: Int) throws(QSMError) -> [ProtocolSpec] {
        _ = try node.mapping(allowing: ["name", "b0", "te", "echoes", "snr", "orientation", "voxel", "phase_offset"])
        let name = try node["name"]?.string() ?? "protocol-\(index + 1)"
        var base = ProtocolSpec(name: name, fieldStrength: 3, echoTimes: [0.004, 0.008, 0.012, 0.016],
                                snr: .infinity, rotationDegrees: .zero, acquiredVoxelSize: nil,
                                phaseOffset: try node["phase_offset"]?.bool() ?? false, sweep: nil)
        // Each field is a single value or a list (a sweep); at most one field may sweep.
        var sweeps: [(key: String, values: [SweepValue])] = []
        func addField(_ key: String, _ values: [SweepValue])
            throws(QSMError) {
            if values.count == 1 { base = try values[0].apply(base) } else { sweeps.append((key, values)) }
        }
        if let b0 = node["b0"] {
            var values: [SweepValue] = []
            for item in b0.list() {
                let t = try item.double()
                guard t > 0 else { throw item.error("\(t) T is not a positive field strength") }
                values.append(SweepValue(apply: { var p = $0; p.fieldStrength = t; return p }, x: t))
            }
            try addField("b0", values)
        }
        if let te = node["te"] {
            // A flat list is one TE list; a list of lists sweeps.
            let lists = te.list().contains(where: \.isList) ? te.list() : [te]
            var values: [SweepValue] = []
            for list in lists {
                var times: [Double] = []
                for item in list.list() {
                    let t = try item.double()
                    guard t > 0 else { throw item.error("\(t) is not a positive echo time") }
                    guard t < 1 else { throw item.error("\(t) is not in seconds; did you mean \(t / 1000)?") }
                    if let last = times.last, t <= last { throw item.error("echo times must increase") }
                    times.append(t)
                }
                guard !times.isEmpty else { throw list.error("at least one echo time is needed") }
                values.append(SweepValue(apply: { var p = $0; p.echoTimes = times; return p }, x: times[0] * 1000))
            }
            try addField("te", values)
        }
        if let echoes = node["echoes"] {
            var values: [SweepValue] = []
            for item in echoes.list() {
                let n = try item.integer()
                guard n >= 1 else { throw item.error("\(n) is not a positive echo count") }
                values.append(SweepValue(apply: { (p: ProtocolSpec) throws(QSMError) -> ProtocolSpec in
                    var q = p
                    guard let first = p.echoTimes.first else { throw item.error("needs te") }
                    let spacing = p.echoTimes.count > 1 ? p.echoTimes[1] - p.echoTimes[0] : first
                    q.echoTimes = (0..<n).map { first + Double($0) * spacing }
                    return q
                }, x: Double(n)))
            }
            try addField("echoes", values)
        }
        if let snr = node["snr"] {
            var values: [SweepValue] = []
            for item in snr.list() {
                let s = try item.double(allowInfinity: true)
                guard s > 0 else { throw item.error("SNR \(s) must be positive (inf for noise-free)") }
                values.append(SweepValue(apply: { var p = $0; p.snr = s; return p }, x: s))
            }
            try addField("snr", values)
        }
        if let orientation = node["orientation"] {
            let triples = orientation.list().contains(where: \.isList) ? orientation.list() : [orientation]
            var values: [SweepValue] = []
            for triple in triples {
                let angles = try doubleTriple(triple, positive: false)
                let tilt = (angles * angles).sum().squareRoot()
                values.append(SweepValue(apply: { var p = $0; p.rotationDegrees = angles; return p }, x: tilt))
            }
            try addField("orientation", values)
        }
        if let voxel = node["voxel"] {
            let items = voxel.list().contains(where: \.isList) || voxel.list().count != 3 ? voxel.list() : [voxel]
            var values: [SweepValue] = []
            for item in items {
                let size = try doubleTriple(item)
                values.append(SweepValue(apply: { var p = $0; p.acquiredVoxelSize = size; return p }, x: size.max()))
            }
            try addField("voxel", values)
        }
        guard sweeps.count <= 1 else {
            throw node.error("sweeps \(sweeps.map(\.key).joined(separator: " and ")) at once; sweep one field per protocol")
        }
        guard let (key, values) = sweeps.first else { return [base] }
        var out: [ProtocolSpec] = []
        for value in values {
            var p = try value.apply(base)
            p.name = "\(name)[\(key)=\(formatSweep(value.x))]"
            p.sweep = SweepPoint(parameter: key, value: value.x, base: name)
            out.append(p)
        }
        return out
    }

    /// One value of a protocol field: how it edits the protocol and where it sits on a sweep's x axis.
    struct SweepValue {
        var apply: (ProtocolSpec) throws(QSMError) -> ProtocolSpec
        var x: Double
    }

    private static func decodePipeline(_ node: ConfigNode, index: Int) throws(QSMError) -> [PipelineSpec] {
        _ = try node.mapping(allowing: Set(["name"] + stageKeys))
        let name = try node["name"]?.string() ?? "pipeline-\(index + 1)"
        var methods: [String: String] = [:]
        var lines: [String: Int] = [:]
        // Parameter axes in document order: (key, values).
        var axes: [(String, [String])] = []
        for key in stageKeys {
            guard let stage = node[key] else { continue }
            lines[key] = stage.line
            if case .scalar = stage.value { methods[key] = try stage.string(); continue }
            let pairs = try stage.mapping()
            guard let method = stage["method"] else { throw stage.error("method: missing") }
            methods[key] = try method.string()
            for pair in pairs where pair.key != "method" {
                lines["\(key).\(pair.key)"] = pair.node.line
                var values: [String] = []
                for item in pair.node.list() { values.append(try item.string()) }
                guard !values.isEmpty else { throw pair.node.error("empty list of values") }
                axes.append(("\(key).\(pair.key)", values))
            }
        }
        var combos: [[(String, String)]] = [[]]
        for (key, values) in axes { combos = combos.flatMap { c in values.map { c + [(key, $0)] } } }
        let gridded = axes.filter { $0.1.count > 1 }.map(\.0)
        return combos.map { combo in
            var parameters: [String: String] = [:]
            for (k, v) in combo { parameters[k] = v }
            let suffix = gridded.isEmpty ? "" : "[" + gridded.map { "\($0)=\(parameters[$0]!)" }.joined(separator: ",") + "]"
            return PipelineSpec(name: name + suffix, methods: methods, parameters: parameters, line: node.line,
                                lines: lines, path: node.path)
        }
    }

    private static func intTriple(_ node: ConfigNode) throws(QSMError) -> SIMD3<Int> {
        let items = node.list()
        guard items.count == 1 || items.count == 3 else { throw node.error("expected N or [NX, NY, NZ]") }
        var v: [Int] = []
        for item in items {
            let n = try item.integer()
            guard n > 0 else { throw item.error("\(n) is not a positive size") }
            v.append(n)
        }
        return v.count == 1 ? SIMD3(repeating: v[0]) : SIMD3(v[0], v[1], v[2])
    }

    private static func doubleTriple(_ node: ConfigNode, positive: Bool = true) throws(QSMError) -> SIMD3<Double> {
        let items = node.list()
        guard items.count == 1 || items.count == 3 else { throw node.error("expected X or [X, Y, Z]") }
        var v: [Double] = []
        for item in items {
            let x = try item.double()
            guard !positive || x > 0 else { throw item.error("\(x) is not positive") }
            v.append(x)
        }
        return v.count == 1 ? SIMD3(repeating: v[0]) : SIMD3(v[0], v[1], v[2])
    }

    private static func formatSweep(_ x: Double) -> String {
        if x.isInfinite { return "inf" }
        return x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : "\(x)"
    }
}
