import Foundation
import QSMCore
import QSMIO
import Testing

/// Discovery, sidecars, phase-scaling detection and every bad-input error of `BIDSDataset`.
@Suite struct BIDSDatasetTests {
    final class Dataset {
        let root = NSTemporaryDirectory() + "qsmbench-bids-" + UUID().uuidString
        init() { try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: root) }
        func path(_ relative: String) -> String { root + "/" + relative }

        /// A small smooth wrapped phase: φ = wrap(0.9·x − 0.5·y + 0.3·z·echo), rad.
        static func phase(_ grid: Grid, echo: Int) -> Volume<Float> {
            var v = Volume<Float>(zeros: grid)
            for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
                let raw = Double(echo) * (0.9 * Double(x) - 0.5 * Double(y) + 0.3 * Double(z))
                v[x, y, z] = Float(atan2(sin(raw), cos(raw)))
            } } }
            return v
        }

        enum Storage { case radians, unsigned12, signed12 }

        /// Writes `echoes` echoes of series `base` (e.g. `sub-01/anat/sub-01`); `sidecar` edits each phase sidecar.
        func series(_ base: String, echoes: Int = 3, grid: Grid = Grid(shape: SIMD3(6, 5, 4)), storage: Storage = .radians,
                    units: String? = "rad", sidecar: (Int, inout [String: Any]) -> Void = { _, _ in }) throws {
            try FileManager.default.createDirectory(atPath: (path(base) as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            for echo in 1...echoes {
                let phase = Self.phase(grid, echo: echo)
                let phasePath = path("\(base)_echo-\(echo)_part-phase_MEGRE.nii.gz")
                switch storage {
                case .radians: try NIfTI.write(phase, to: phasePath)
                case .unsigned12:
                    try NIfTI.write(phase.map { (Double($0) + .pi) * 4095 / (2 * .pi) }.map { $0.rounded() }, to: phasePath, datatype: .int16)
                case .signed12:
                    // Stored 0…4095 with scl_slope 2, scl_inter −4096: values −4096…4094 (dcm2niix Siemens).
                    try NIfTI.write(phase.map { (Double($0) * 4096 / .pi / 2).rounded() * 2 }, to: phasePath, datatype: .int16,
                                    slope: 2, intercept: -4096)
                }
                try NIfTI.write(Volume<Float>(grid: grid, repeating: 1), to: path("\(base)_echo-\(echo)_part-mag_MEGRE.nii.gz"))
                var metadata: [String: Any] = ["EchoTime": 0.005 * Double(echo), "MagneticFieldStrength": 1, "EchoNumber": echo]
                if let units { metadata["Units"] = units }
                sidecar(echo, &metadata)
                try json(metadata, "\(base)_echo-\(echo)_part-phase_MEGRE.json")
                try json(["EchoTime": 0.005 * Double(echo)], "\(base)_echo-\(echo)_part-mag_MEGRE.json")
            }
        }

        func json(_ object: [String: Any], _ relative: String) throws {
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path(relative)))
        }

        func remove(_ relative: String) throws { try FileManager.default.removeItem(atPath: path(relative)) }
    }

    @Test func discoversSeriesBySubjectSessionAndEntities() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        try d.series("sub-02/ses-pre/anat/sub-02_ses-pre_acq-fast_run-2", echoes: 2)
        try d.series("derivatives/qsmxt/sub-03/anat/sub-03")  // skipped
        try d.json(["Name": "x", "BIDSVersion": "1.9.0"], "dataset_description.json")
        let all = try BIDSDataset.discover(d.root)
        #expect(all.map(\.key.baseName) == ["sub-01", "sub-02_ses-pre_acq-fast_run-2"])
        #expect(all.map(\.echoes.count) == [3, 2])
        #expect(all[1].key.anatomicalFolder == "sub-02/ses-pre/anat")
        #expect(all[0].key.anatomicalFolder == "sub-01/anat")
        #expect(try BIDSDataset.discover(d.root, subjects: ["02"]).map(\.key.subject) == ["02"])
        #expect(try BIDSDataset.discover(d.root, subjects: ["sub-01"]).map(\.key.subject) == ["01"])
        let data = try BIDSDataset.read(all[1])
        #expect(data.echoTimes == [0.005, 0.010])
        #expect(data.fieldStrength == 1)  // integer 1: Linux Foundation also casts it to Bool (checked), which an `is Bool` guard would drop
        #expect(data.phase.frames == 2 && data.magnitude.frames == 2)
    }

    // Each 12-bit step is 2π/4095 rad (unsigned) or 2π/4096 (signed, steps of 2 over 8192): the
    // rescaled phase must match the original within half a step plus float round-off (1e-6).
    @Test(arguments: [(Dataset.Storage.unsigned12, PhaseScalingDetection.unsigned12Bit, Double.pi / 4095),
                      (.signed12, .signed12Bit, Double.pi / 4096), (.radians, .radians, 0)])
    func detectsAndUndoesPhaseScaling(storage: Dataset.Storage, expected: PhaseScalingDetection, halfStep: Double) throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01", storage: storage, units: storage == .radians ? nil : "arbitrary")
        let data = try BIDSDataset.read(try BIDSDataset.discover(d.root)[0])
        #expect(data.phaseScaling == expected)
        let n = data.phase.grid.count
        var worst = 0.0
        for echo in 0..<3 {
            let truth = Dataset.phase(data.phase.grid, echo: echo + 1)
            for i in 0..<n {
                var e = abs(Double(data.phase.voxels[echo * n + i]) - Double(truth.voxels[i]))
                e = min(e, abs(e - 2 * .pi))  // ±π are the same phase
                worst = max(worst, e)
            }
        }
        #expect(worst <= halfStep + 1e-6)
    }

    @Test func minimumMaximumFallbackAndRadiansRule() throws {
        #expect(try BIDSDataset.detectScaling(minimum: -3.14, maximum: 3.14, declaredRadians: false, path: "p") == .radians)
        #expect(try BIDSDataset.detectScaling(minimum: 0, maximum: 4095, declaredRadians: false, path: "p") == .unsigned12Bit)
        #expect(try BIDSDataset.detectScaling(minimum: -4096, maximum: 4094, declaredRadians: false, path: "p") == .signed12Bit)
        #expect(try BIDSDataset.detectScaling(minimum: -3142, maximum: 3141, declaredRadians: false, path: "p") == .signed12Bit)
        #expect(try BIDSDataset.detectScaling(minimum: 0, maximum: 65535, declaredRadians: false, path: "p") == .minimumMaximum)
        #expect(throws: QSMError.invalidFile("p.json", "Units is rad but the phase spans [0.0, 4095.0]")) {
            try BIDSDataset.detectScaling(minimum: 0, maximum: 4095, declaredRadians: true, path: "p.nii")
        }
    }

    /// Reads the only series and returns the error it throws.
    func readError(_ d: Dataset) throws -> QSMError? {
        do { _ = try BIDSDataset.read(try BIDSDataset.discover(d.root)[0]); return nil } catch { return error }
    }

    @Test func missingEchoNamesTheFile() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        for part in ["mag", "phase"] {
            try d.remove("sub-01/anat/sub-01_echo-2_part-\(part)_MEGRE.nii.gz")
            try d.remove("sub-01/anat/sub-01_echo-2_part-\(part)_MEGRE.json")
        }
        let error = try #require(try readError(d))
        #expect(error == .invalidFile(d.path("sub-01/anat/sub-01_echo-3_part-phase_MEGRE.nii.gz"),
                                      "echo-2 of sub-01 is missing (echoes found: 1,3)"))
    }

    @Test func missingPartNamesTheFile() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        try d.remove("sub-01/anat/sub-01_echo-2_part-mag_MEGRE.nii.gz")
        #expect(try readError(d) == .invalidFile(d.path("sub-01/anat/sub-01_echo-2_part-phase_MEGRE.nii.gz"),
                                                 "sub-01_echo-2_part-mag_MEGRE.nii[.gz] is missing"))
    }

    @Test func missingSidecarNamesIt() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        try d.remove("sub-01/anat/sub-01_echo-3_part-phase_MEGRE.json")
        #expect(try readError(d) == .invalidFile(d.path("sub-01/anat/sub-01_echo-3_part-phase_MEGRE.json"),
                                                 "sidecar is missing or unreadable"))
    }

    @Test func missingEchoTimeNamesTheSidecar() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01") { echo, m in if echo == 2 { m["EchoTime"] = nil } }
        #expect(try readError(d) == .invalidFile(d.path("sub-01/anat/sub-01_echo-2_part-phase_MEGRE.json"),
                                                 "has no numeric EchoTime (seconds; required for MEGRE)"))
    }

    @Test func echoTimeInMillisecondsIsRefused() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01") { echo, m in m["EchoTime"] = 5.0 * Double(echo) }
        let error = try #require(try readError(d))
        #expect(error.description.hasPrefix(d.path("sub-01/anat/sub-01_echo-1_part-phase_MEGRE.json")))
    }

    @Test func mismatchedShapeNamesTheFile() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        try NIfTI.write(Volume<Float>(grid: Grid(shape: SIMD3(6, 5, 3)), repeating: 1),
                        to: d.path("sub-01/anat/sub-01_echo-2_part-mag_MEGRE.nii.gz"))
        #expect(try readError(d) == .mismatch(d.path("sub-01/anat/sub-01_echo-2_part-mag_MEGRE.nii.gz"),
                                              "shape 6×5×3 differs from sub-01_echo-1_part-phase_MEGRE.nii.gz (6×5×4)"))
    }

    @Test func mismatchedAffineNamesTheFile() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        let shifted = Grid(shape: SIMD3(6, 5, 4), affine: Affine(rowMajor: [1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))
        try NIfTI.write(Dataset.phase(shifted, echo: 3), to: d.path("sub-01/anat/sub-01_echo-3_part-phase_MEGRE.nii.gz"))
        let error = try #require(try readError(d))
        #expect(error == .mismatch(d.path("sub-01/anat/sub-01_echo-3_part-phase_MEGRE.nii.gz"),
                                   "affine differs from sub-01_echo-1_part-phase_MEGRE.nii.gz by up to 2.0 mm"))
    }

    @Test func nonFiniteValueNamesTheFile() throws {
        let d = Dataset()
        try d.series("sub-01/anat/sub-01")
        var phase = Dataset.phase(Grid(shape: SIMD3(6, 5, 4)), echo: 2)
        phase.voxels[7] = .nan
        try NIfTI.write(phase, to: d.path("sub-01/anat/sub-01_echo-2_part-phase_MEGRE.nii.gz"))
        #expect(try readError(d) == .invalidFile(d.path("sub-01/anat/sub-01_echo-2_part-phase_MEGRE.nii.gz"),
                                                 "holds a non-finite value (nan) at voxel 7"))
    }

    @Test func directoryWithoutMEGREDataIsAnError() throws {
        let d = Dataset()
        try FileManager.default.createDirectory(atPath: d.path("sub-01/anat"), withIntermediateDirectories: true)
        try NIfTI.write(Volume<Float>(grid: Grid(shape: SIMD3(2, 2, 2)), repeating: 1), to: d.path("sub-01/anat/sub-01_T1w.nii.gz"))
        #expect(throws: QSMError.invalidFile(d.root, "no *_echo-<n>_part-{mag,phase}_MEGRE.nii[.gz] files found in sub-*/[ses-*/]anat")) {
            try BIDSDataset.discover(d.root)
        }
        #expect(throws: QSMError.invalidFile(d.path("missing"), "is not a directory")) { try BIDSDataset.discover(d.path("missing")) }
    }
}
