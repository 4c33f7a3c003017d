import Testing
import QSMPipeline

@Suite struct PipelineTests {
    @Test func defaultPipelineFromTotalField() throws {
        let head = BackgroundRemovalTests.head
        let result = try Pipeline().run(PipelineInputs(mask: head.mask, totalField: head.totalField), context: StageContext())
        #expect(result.records.map(\.kind) == [.backgroundRemoval, .inversion, .referencing])
        #expect(result.records.map(\.method) == ["vsharp", "tkd", "mean"])
        let local = try #require(result.localField)
        #expect(result.susceptibility.mean(in: local.mask).magnitude < 1e-6)     // referenced to the mask mean
        // TKD's own error on this phantom (truth local field in, same mask) is the floor the pipeline
        // can reach; the pipeline adds V-SHARP's error (0.27) on top.
        let alone = try TKD().apply(localField: head.localField.masked(by: local.mask), mask: local.mask, context: StageContext())
        let floor = demeanedRelativeError(alone, head.localSusceptibility, in: local.mask)
        let error = demeanedRelativeError(result.susceptibility, head.localSusceptibility, in: local.mask)
        print("pipeline from total field: χ error \(error), TKD alone on the true local field \(floor)")
        // Measured: TKD alone 0.274 (truncation bias and streaking), pipeline 0.403.
        #expect(floor < 0.35)
        #expect(error < floor + 0.2)
    }

    /// Phase → χ with region growing: the echo fit must reproduce the true total field up to the
    /// constant 2πk/(2π·γ̄·B0·TE1) the unwrapping leaves (checked demeaned, to 1e-4 relative).
    @Test func phaseToSusceptibilityWithRegionGrowing() throws {
        let head = SyntheticHead(size: 48, brainRadius: 16, exteriorScale: 0.2)
        let echoTimes = [0.002, 0.004, 0.006, 0.008]
        let context = StageContext(echoTimes: echoTimes)
        let total = head.totalField
        var frames: [Volume<Float>] = []
        for te in echoTimes {
            frames.append(try Volume(grid: head.grid, voxels: total.voxels.map {
                let p = context.conventions.phase(fromPPM: Double($0), echoTime: te, fieldStrength: 3)
                return Float(p - 2 * Double.pi * (p / (2 * Double.pi)).rounded())
            }))
        }
        let magnitude = try Volume.stacking(echoTimes.map { te in
            head.mask.map { Float($0 ? Double.exp(-te / 0.04) : 0.01) }
        })
        var configuration = PipelineConfiguration()
        configuration.unwrapping = RegionGrowingUnwrapping.name
        configuration.settings = [try ParameterSetting(parsing: "bgremove.maxRadius=12")]
        let result = try Pipeline(configuration).run(
            PipelineInputs(wrappedPhase: try Volume.stacking(frames), magnitude: magnitude), context: context)
        #expect(result.records.map(\.kind) == StageKind.allCases)
        let mask = result.mask
        let fieldError = demeanedRelativeError(try #require(result.fieldEstimate).totalField, total, in: mask)
        print("phase → field: relative error \(fieldError), mask \(mask.insideCount) of \(head.mask.insideCount)")
        #expect(fieldError < 1e-4)
        let local = try #require(result.localField)
        let chiError = demeanedRelativeError(result.susceptibility, head.localSusceptibility, in: local.mask)
        print("phase → χ: error \(chiError)")
        // Measured 0.587: the threshold mask is one voxel smaller than the brain and V-SHARP runs to
        // 12 mm on a 16 mm brain, so the rim error of V-SHARP weighs more than on the 64³ phantom.
        #expect(chiError < 0.75)
    }

    @Test func missingInputsAreReported() throws {
        let grid = Grid(shape: SIMD3(8, 8, 8))
        #expect(throws: QSMError.invalidOption("--mask", "no mask given and no magnitude to compute one from")) {
            try Pipeline().run(PipelineInputs(totalField: Volume(zeros: grid)), context: StageContext())
        }
        var configuration = PipelineConfiguration()
        configuration.settings = [try ParameterSetting(parsing: "inversion.threshold=2")]
        #expect(throws: QSMError.invalidParameter("inversion.threshold", "2.0 is outside (0, 2/3)")) {
            try Pipeline(configuration)
        }
    }
}
