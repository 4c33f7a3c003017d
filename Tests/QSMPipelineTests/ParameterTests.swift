import Testing
import QSMPipeline

/// Builds `method` of `setting`'s stage through the registry with that one setting.
func build(_ method: String, _ setting: String) throws(QSMError) {
    let s = try ParameterSetting(parsing: setting)
    switch s.stage {
    case .masking: _ = try MethodRegistry.masking(method, settings: [s])
    case .unwrapping: _ = try MethodRegistry.unwrapping(method, settings: [s])
    case .combination: _ = try MethodRegistry.combination(method, settings: [s])
    case .backgroundRemoval: _ = try MethodRegistry.backgroundRemoval(method, settings: [s])
    case .inversion: _ = try MethodRegistry.inversion(method, settings: [s])
    case .referencing: _ = try MethodRegistry.referencing(method, settings: [s])
    }
}

@Suite struct ParameterTests {
    /// Every parameter with at least one value outside its valid range or not parsable.
    static let badSettings: [(method: String, setting: String)] = [
        ("threshold", "mask.rule=median"), ("threshold", "mask.fraction=0"), ("threshold", "mask.fraction=1"),
        ("threshold", "mask.fillHoles=maybe"), ("threshold", "mask.erosions=-1"), ("threshold", "mask.erosions=1.5"),
        ("linear-fit", "combine.estimateOffset=2"), ("linear-fit", "combine.weighting=cubic"),
        ("sharp", "bgremove.radius=0"), ("sharp", "bgremove.radius=-3"), ("sharp", "bgremove.threshold=0"),
        ("sharp", "bgremove.threshold=1"), ("sharp", "bgremove.radius=nan"),
        ("vsharp", "bgremove.maxRadius=0"), ("vsharp", "bgremove.minRadius=0"), ("vsharp", "bgremove.radiusStep=0"),
        ("vsharp", "bgremove.threshold=1.5"), ("vsharp", "bgremove.minRadius=20"), ("vsharp", "bgremove.radiusStep=0.01"),
        ("resharp", "bgremove.radius=0"), ("resharp", "bgremove.regularization=-1"), ("resharp", "bgremove.tolerance=0"),
        ("resharp", "bgremove.maxIterations=0"),
        ("ismv", "bgremove.radius=0"), ("ismv", "bgremove.tolerance=1"), ("ismv", "bgremove.maxIterations=0"),
        ("pdf", "bgremove.tolerance=0"), ("pdf", "bgremove.maxIterations=-1"), ("pdf", "bgremove.padding=-1"),
        ("lbv", "bgremove.tolerance=0"), ("lbv", "bgremove.maxIterations=0"),
        ("tkd", "inversion.threshold=0.9"), ("tkd", "inversion.threshold=0"), ("tkd", "inversion.threshold=abc"),
        ("mean", "reference.label=-1"),
        ("region-growing", "unwrap.templateEcho=0"), ("region-growing", "unwrap.individual=2"),
        ("region-growing", "unwrap.phaseCoherence=x"), ("region-growing", "unwrap.phaseGradientCoherence=x"),
        ("region-growing", "unwrap.phaseLinearity=x"), ("region-growing", "unwrap.magnitudeCoherence=x"),
        ("tkd", "inversion.lambda=0.1"), ("laplacian", "unwrap.iterations=3"),
    ]

    @Test(arguments: badSettings) func badValueIsRejectedNamingTheParameter(_ method: String, _ setting: String) throws {
        let key = String(setting.split(separator: "=")[0])
        do {
            try build(method, setting)
            Issue.record("\(method) accepted \(setting)")
        } catch let error {
            guard case let .invalidParameter(subject, problem) = error else { Issue.record("wrong error \(error)"); return }
            #expect(subject == key)
            #expect(!problem.isEmpty && !problem.contains("\n"))
        }
    }

    @Test func messagesFollowTheContract() throws {
        #expect(throws: QSMError.invalidParameter("inversion.threshold", "0.9 is outside (0, 2/3)")) {
            try build("tkd", "inversion.threshold=0.9")
        }
        #expect(throws: QSMError.invalidParameter("bgremove.minRadius", "20.0 mm exceeds maxRadius (18.0 mm)")) {
            try build("vsharp", "bgremove.minRadius=20")
        }
        #expect(throws: QSMError.invalidParameter("inversion.lambda", "unknown parameter; known: threshold, correction")) {
            try build("tkd", "inversion.lambda=0.1")
        }
        #expect(throws: QSMError.invalidOption("--bgremove", "'harp' is not a known bgremove method; use one of sharp, vsharp, resharp, ismv, pdf, lbv")) {
            _ = try MethodRegistry.backgroundRemoval("harp")
        }
        #expect(throws: QSMError.invalidOption("--set", "'inversion.threshold' is not stage.parameter=value")) {
            _ = try ParameterSetting(parsing: "inversion.threshold")
        }
        #expect(throws: QSMError.invalidOption("--set", "'invert' is not a stage; use one of mask, unwrap, combine, bgremove, inversion, reference")) {
            _ = try ParameterSetting(parsing: "invert.threshold=0.2")
        }
    }

    @Test func goodValuesAreApplied() throws {
        let s = try ParameterSetting(parsing: "inversion.threshold=0.2")
        let tkd = try MethodRegistry.inversion("TKD", settings: [s])
        let parameters = try #require((tkd as? TKD)?.parameters)
        #expect(parameters.threshold == 0.2)
        var v = VSHARP.Parameters()
        try v.setParameter("maxRadius", to: "12", stage: "bgremove")
        #expect(v.parameterText("maxRadius") == "12.0")
    }

    /// `apply` validates too, so a method built in code with a bad value fails with the same message.
    @Test func applyValidates() throws {
        var p = TKD.Parameters()
        p.threshold = 0.7
        let grid = Grid(shape: SIMD3(8, 8, 8))
        #expect(throws: QSMError.invalidParameter("inversion.threshold", "0.7 is outside (0, 2/3)")) {
            try TKD(p).apply(localField: Volume(zeros: grid), mask: Mask(grid: grid, repeating: true), context: StageContext())
        }
        var s = SHARP.Parameters()
        s.radius = 0.5
        #expect(throws: QSMError.invalidParameter("bgremove.radius", "radius 0.5 mm is smaller than one voxel (1.0 mm)")) {
            try SHARP(s).apply(totalField: Volume(zeros: grid), mask: centralSphere(grid, radius: 3), context: StageContext())
        }
    }

    @Test func everyMethodIsListedWithDocumentedDefaults() {
        let methods = MethodRegistry.methods
        #expect(Set(methods.map(\.name)).isSuperset(of: ["threshold", "laplacian", "region-growing", "linear-fit", "sharp", "vsharp", "resharp",
                                                        "ismv", "pdf", "lbv", "tkd", "mean"]))
        for m in methods {
            for p in m.parameters {
                #expect(!p.documentation.isEmpty && !p.validRange.isEmpty && !p.defaultValue.isEmpty)
            }
        }
        #expect(methods.first { $0.name == "tkd" }?.parameters.first?.defaultValue == "0.15")
    }
}
