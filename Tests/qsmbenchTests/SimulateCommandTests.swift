import Foundation
import Testing
import QSMCore
import QSMIO
import QSMTestSupport

@Suite("qsmbench simulate")
struct SimulateCommandTests {
    static func sidecar(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func simulate(_ arguments: [String], out: String) throws -> CommandResult {
        try runQSMBench(["simulate"] + arguments + ["--out", out])
    }

    @Test func sphereDatasetFollowsTheContractAndReadsBack() throws {
        let scratch = CommandScratch()
        let out = scratch.path("bids")
        let result = try Self.simulate(["--phantom", "sphere", "--matrix", "32", "--te", "0.005,0.01", "--b0", "7"], out: out)
        #expect(result.status == 0, "\(result.standardError)")
        let anat = out + "/sub-sphere/anat/sub-sphere"
        let truth = out + "/derivatives/qsmbench/sub-sphere/anat/sub-sphere"
        var expected = [out + "/dataset_description.json", out + "/derivatives/qsmbench/dataset_description.json",
                        truth + "_dseg.tsv"]
        for echo in 1...2 { for part in ["mag", "phase"] {
            expected += ["\(anat)_echo-\(echo)_part-\(part)_MEGRE.nii.gz", "\(anat)_echo-\(echo)_part-\(part)_MEGRE.json"]
        } }
        for suffix in ["Chimap", "mask", "dseg", "fieldmap", "desc-local_fieldmap", "desc-local_Chimap", "desc-background_fieldmap", "M0map", "R2starmap"] {
            expected += ["\(truth)_\(suffix).nii.gz", "\(truth)_\(suffix).json"]
        }
        for path in expected { #expect(FileManager.default.fileExists(atPath: path), "missing \(path)") }

        let meta = try Self.sidecar("\(anat)_echo-1_part-phase_MEGRE.json")
        #expect(meta["EchoTime"] as? Double == 0.005)
        #expect(meta["MagneticFieldStrength"] as? Double == 7)
        #expect(meta["Units"] as? String == "rad")
        #expect(meta["EchoNumber"] as? Int == 1)
        #expect(meta["DipoleKernelDC"] as? String == "zero")
        #expect(meta["GyromagneticRatio"] as? Double == 42.5775)
        #expect(meta["PhaseSign"] as? String == "+1")

        // Phase read back through QSMIO equals the field read back, times 2π·γ̄·B0·TE (no noise, no φ0).
        let phase = try NIfTI.readVolume("\(anat)_echo-1_part-phase_MEGRE.nii.gz")
        let field = try NIfTI.readVolume("\(truth)_fieldmap.nii.gz")
        let mask = try NIfTI.readVolume("\(truth)_mask.nii.gz")
        #expect(phase.grid.shape == SIMD3(repeating: 32))
        #expect(mask.voxels.allSatisfy { $0 == 0 || $0 == 1 } && mask.voxels.contains(1))
        let factor = 2 * Double.pi * 42.5775 * 7 * 0.005
        let worst = zip(phase.voxels, field.voxels).map { abs(Double($0) - factor * Double($1)) }.max()!
        // Float storage of phase and field (|φ| < 1 rad): a few 1e-7.
        #expect(worst < 2e-6, "worst \(worst)")
        #expect(phase.voxels.map { abs($0) }.max()! > 0.1)
        // B0 direction from the phase file's affine equals the sidecar's B0_dir.
        let b0 = phase.grid.b0Direction()
        #expect(abs(b0.z - 1) < 1e-6)
        let table = try String(contentsOfFile: truth + "_dseg.tsv", encoding: .utf8)
        #expect(table.hasPrefix("index\tname\tchi_ppm\tm0\tr2star_per_s\n"))
    }

    @Test func sameSeedGivesIdenticalFilesOtherSeedDiffers() throws {
        let scratch = CommandScratch()
        let common = ["--phantom", "sphere", "--matrix", "24", "--te", "0.004,0.012", "--snr", "15"]
        for (name, seed) in [("a", "5"), ("b", "5"), ("c", "6")] {
            let result = try Self.simulate(common + ["--seed", seed], out: scratch.path(name))
            #expect(result.status == 0, "\(result.standardError)")
        }
        let files = try FileManager.default.subpathsOfDirectory(atPath: scratch.path("a")).filter { $0.hasSuffix(".gz") || $0.hasSuffix(".json") }
        #expect(files.count > 20)
        for file in files {
            let a = try Data(contentsOf: URL(fileURLWithPath: scratch.path("a/" + file)))
            let b = try Data(contentsOf: URL(fileURLWithPath: scratch.path("b/" + file)))
            #expect(a == b, "\(file) differs between runs with the same seed")
        }
        let phase = "sub-sphere/anat/sub-sphere_echo-2_part-phase_MEGRE.nii.gz"
        let a = try NIfTI.readVolume(scratch.path("a/" + phase)), c = try NIfTI.readVolume(scratch.path("c/" + phase))
        #expect(zip(a.voxels, c.voxels).filter { $0 != $1 }.count > a.voxels.count / 2)
    }

    @Test func int12PhaseIsStoredAsScannerIntegers() throws {
        let scratch = CommandScratch()
        let out = scratch.path("bids")
        let result = try Self.simulate(["--phantom", "cylinder", "--matrix", "24,24,8", "--angle", "0",
                                        "--phase-scaling", "int12", "--te", "0.02"], out: out)
        #expect(result.status == 0, "\(result.standardError)")
        let path = out + "/sub-cylinder/anat/sub-cylinder_echo-1_part-phase_MEGRE.nii.gz"
        let image = try NIfTI.read(path)
        #expect(image.header.datatype == .int16)
        #expect(image.values.voxels.allSatisfy { $0 >= 0 && $0 <= 4095 && $0 == $0.rounded() })
        #expect(try Self.sidecar(path.replacingOccurrences(of: ".nii.gz", with: ".json"))["Units"] as? String == "arbitrary")
        // Cylinder parallel to B0: Δχ/3 inside → φ = 2π·42.5775·3·0.02·0.0333 = 0.535 rad → stored ≈ 2396.
        let centre = image.values[12, 12, 4]
        #expect(abs(centre - ((0.535 + Double.pi) * 4095 / (2 * .pi)).rounded()) <= 25, "centre \(centre)")
    }

    @Test func cylinderAngleIsRecordedInSidecarAndAffine() throws {
        let scratch = CommandScratch()
        let out = scratch.path("bids")
        let result = try Self.simulate(["--phantom", "cylinder", "--matrix", "24,24,8", "--angle", "30", "--te", "0.01"], out: out)
        #expect(result.status == 0, "\(result.standardError)")
        let path = out + "/sub-cylinder/anat/sub-cylinder_echo-1_part-mag_MEGRE"
        let b0 = try #require(try Self.sidecar(path + ".json")["B0_dir"] as? [Double])
        #expect(abs(b0[0] - 0.5) < 1e-9 && abs(b0[1]) < 1e-9 && abs(b0[2] - 0.75.squareRoot()) < 1e-9)
        let fromAffine = try NIfTI.readVolume(path + ".nii.gz").grid.b0Direction()
        // The affine is stored in float32 (NIfTI-1 sform): agreement to ~1e-7.
        #expect(abs(abs(fromAffine.x * b0[0] + fromAffine.y * b0[1] + fromAffine.z * b0[2]) - 1) < 1e-6)
    }

    /// The truth χ of one run, fed back as a χ map (also in the qsm-forward directory layout), gives
    /// the same field again.
    @Test func chiMapOfTheTruthReproducesTheField() throws {
        let scratch = CommandScratch()
        let first = scratch.path("sphere")
        var result = try Self.simulate(["--phantom", "sphere", "--matrix", "32", "--te", "0.01"], out: first)
        #expect(result.status == 0, "\(result.standardError)")
        let truth = first + "/derivatives/qsmbench/sub-sphere/anat/sub-sphere"
        result = try Self.simulate(["--phantom", "chimap", "--chi-map", truth + "_Chimap.nii.gz", "--mask", truth + "_mask.nii.gz",
                                    "--te", "0.01"], out: scratch.path("chimap"))
        #expect(result.status == 0, "\(result.standardError)")
        let original = try NIfTI.readVolume(truth + "_fieldmap.nii.gz")
        let again = try NIfTI.readVolume(scratch.path("chimap") + "/derivatives/qsmbench/sub-chimap/anat/sub-chimap_fieldmap.nii.gz")
        let scale = original.voxels.map { abs($0) }.max()!
        let worst = zip(original.voxels, again.voxels).map { abs($0 - $1) }.max()!
        // Same χ, same model, single-precision FFTs: round-off ≈ 1e-6 of the largest field.
        #expect(worst < 1e-5 * scale, "worst \(worst) of \(scale)")

        // qsm-forward layout: chimodel/ChiModelMIX.nii, masks/BrainMask.nii.gz.
        let layout = scratch.path("layout")
        try FileManager.default.createDirectory(atPath: layout + "/chimodel", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: layout + "/masks", withIntermediateDirectories: true)
        try NIfTI.write(try NIfTI.readVolume(truth + "_Chimap.nii.gz"), to: layout + "/chimodel/ChiModelMIX.nii")
        try NIfTI.write(try NIfTI.readVolume(truth + "_mask.nii.gz"), to: layout + "/masks/BrainMask.nii.gz")
        result = try Self.simulate(["--phantom", "chimap", "--chi-map", layout, "--te", "0.01"], out: scratch.path("layout-out"))
        #expect(result.status == 0, "\(result.standardError)")
        let third = try NIfTI.readVolume(scratch.path("layout-out") + "/derivatives/qsmbench/sub-chimap/anat/sub-chimap_fieldmap.nii.gz")
        #expect(zip(original.voxels, third.voxels).map { abs($0 - $1) }.max()! < 1e-5 * scale)
    }

    /// `_desc-local_Chimap` is the χ whose field is `_desc-local_fieldmap` (dipole convolution with
    /// zero padding to ≥ 2N, as the simulator's forward model with a zero surround), while `_Chimap`
    /// inside the mask is not: at the brain's rim it holds partial-volume bone and air. (Before model
    /// revision 2 the intracranial part of voxels outside the mask counted as local: 3.7 % RMS of the
    /// local field in the mask at 2 mm.)
    @Test func localChiMapMakesTheLocalField() throws {
        let scratch = CommandScratch()
        let out = scratch.path("head")
        let result = try Self.simulate(["--phantom", "head", "--matrix", "40,48,42", "--voxel", "3.5", "--te", "0.01"], out: out)
        #expect(result.status == 0, "\(result.standardError)")
        let truth = out + "/derivatives/qsmbench/sub-head/anat/sub-head"
        let local = try NIfTI.readVolume(truth + "_desc-local_Chimap.nii.gz"), chi = try NIfTI.readVolume(truth + "_Chimap.nii.gz")
        let field = try NIfTI.readVolume(truth + "_desc-local_fieldmap.nii.gz")
        let inside = try NIfTI.readVolume(truth + "_mask.nii.gz").voxels.map { $0 != 0 }
        #expect(zip(local.voxels, inside).allSatisfy { $1 || $0 == 0 }, "local χ is zero outside the mask")
        func dipoleField(_ source: Volume<Float>) throws -> [Float] {
            let n = source.grid.shape
            let padded = SIMD3((0..<3).map { FFTSize.fastLength(atLeast: 2 * n[$0]) })
            let fft = try FFT<Float>(shape: padded)
            var spectrum = fft.forward(source.padded(to: padded, offset: .zero).voxels)
            let kernel: [Float] = DipoleKernel.halfSpectrum(shape: padded, voxelSize: source.grid.voxelSize, b0Direction: SIMD3(0, 0, 1))
            for k in spectrum.indices { spectrum[k] = Complex(spectrum[k].real * kernel[k], spectrum[k].imaginary * kernel[k]) }
            let full = try Volume(grid: Grid(shape: padded, voxelSize: source.grid.voxelSize), voxels: fft.inverse(spectrum))
            return full.cropped(to: n, offset: .zero).voxels
        }
        let fromLocal = try dipoleField(local)
        let scale = field.voxels.map { abs($0) }.max()!
        let worst = zip(fromLocal, field.voxels).map { abs($0 - $1) }.max()!
        // Same χ and model, single-precision FFTs of a different length order: round-off ~1e-6 of the largest field.
        #expect(worst < 1e-4 * scale, "local χ: worst \(worst) of \(scale)")
        // χ·M instead: measured 4.4× the local field's RMS here; 0.5 is far from round-off either way.
        let fromMasked = try dipoleField(try Volume(grid: chi.grid, voxels: zip(chi.voxels, inside).map { $1 ? $0 : 0 }))
        var difference = 0.0, size = 0.0
        for (a, b) in zip(fromMasked, field.voxels) { difference += Double(a - b) * Double(a - b); size += Double(b) * Double(b) }
        #expect((difference / size).squareRoot() > 0.5, "Chimap·mask: relative RMS difference \((difference / size).squareRoot())")
    }

    /// --out naming an existing file fails before anything is written, and leaves no staging directory.
    @Test func outputOverAFileFailsCleanly() throws {
        let scratch = CommandScratch()
        let file = scratch.path("occupied")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let result = try Self.simulate(["--phantom", "sphere", "--matrix", "8"], out: file)
        #expect(result.status == 2)
        #expect(result.standardError.hasPrefix("error: --out: "), "\(result.standardError)")
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.directory)
        #expect(left == ["occupied"], "\(left)")
    }

    @Test(arguments: [
        (["--phantom", "pyramid"], "error: --phantom: 'pyramid' is not one of sphere, cylinder, head, chimap"),
        (["--phantom", "sphere", "--te", ","], "error: --te: '' in ',' is not a number"),
        (["--phantom", "sphere", "--voxel=-1"], "error: --voxel: '-1' is not X or X,Y,Z with positive numbers"),
        (["--phantom", "sphere", "--voxel", "0"], "error: --voxel: '0' is not X or X,Y,Z with positive numbers"),
        (["--phantom", "sphere", "--snr", "0"], "error: --snr: 0.0 must be positive (or inf)"),
        (["--phantom", "sphere", "--snr=-2"], "error: --snr: -2.0 must be positive (or inf)"),
        (["--phantom", "sphere", "--te", "4,8"], "error: --te: 4.0 is not in seconds; did you mean 0.004?"),
        (["--phantom", "sphere", "--phase-offset", "yes"], "error: --phase-offset: 'yes' is not on or off"),
        (["--phantom", "chimap", "--chi-map", "/nonexistent.nii", "--mask", "/nonexistent.nii"], "error: /nonexistent.nii:"),
        (["--phantom", "cylinder", "--b0-direction", "0,0,1"], "error: --b0-direction: the cylinder's orientation is set with --angle"),
    ])
    func invalidOptionsFailWithOneLineAndWriteNothing(_ arguments: [String], _ message: String) throws {
        let scratch = CommandScratch()
        let out = scratch.path("never")
        let result = try Self.simulate(arguments + ["--matrix", "8"].filter { _ in !arguments.contains("chimap") }, out: out)
        #expect(result.status == 2)
        #expect(result.standardError.hasPrefix(message), "stderr: \(result.standardError)")
        #expect(result.standardError.filter { $0 == "\n" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
