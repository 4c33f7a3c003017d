import Foundation
import QSMIO
import Testing

/// Runs `python3 -c script arguments…`; nil when Python cannot be started.
private func runPython(_ script: String, _ arguments: [String]) -> (status: Int32, output: Data)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
}

private let nibabelAvailable: Bool = runPython("import nibabel", [])?.status == 0

private let reportScript = """
import json, sys
import nibabel as nib
out = []
for path in sys.argv[1:]:
    img = nib.load(path)
    h = img.header
    out.append({
        "affine": img.affine.tolist(),
        "qform": h.get_qform().tolist(),
        "qform_code": int(h["qform_code"]),
        "sform_code": int(h["sform_code"]),
        "dtype": str(h.get_data_dtype().newbyteorder("=").name),
        "shape": list(img.shape),
        "zooms": [float(z) for z in h.get_zooms()],
        "values": img.get_fdata().flatten(order="F").tolist(),
    })
print(json.dumps(out))
"""

private struct NibabelView: Decodable {
    let affine: [[Double]], qform: [[Double]]
    let qform_code: Int, sform_code: Int
    let dtype: String
    let shape: [Int]
    let zooms: [Double]
    let values: [Double]
}

/// Optional peer check (DESIGN.md verification ladder, step 4): files qsmbench writes open in
/// nibabel with the same values and geometry. Skipped when Python or nibabel is missing.
@Suite(.enabled(if: nibabelAvailable, "nibabel is not installed (pip install nibabel) — cross-check skipped"))
struct NIfTINibabelCrossCheckTests {
    @Test func nibabelReadsWhatQSMBenchWrites() throws {
        let scratch = NIfTIScratch()
        let oblique = nifTITestAffine(axis: SIMD3(1, -2, 0.5), degrees: 33, zooms: SIMD3(0.6, 0.7, 1.5),
                                      offset: SIMD3(-80, 95, -12), reflect: true)
        let grid = Grid(shape: SIMD3(5, 4, 3), voxelSize: SIMD3(0.6, 0.7, 1.5), affine: oblique)
        let n = grid.count
        let floats = (0..<n).map { Float($0) * 0.37 - 4 }
        let stored = (0..<n).map { Double($0 * 53 % 400 - 200) }
        let slope = 0.0123, intercept = -1.5
        var files: [(path: String, dtype: String, frames: Int, values: [Double])] = []

        var path = scratch.path("float32.nii.gz")
        try NIfTI.write(try Volume(grid: grid, voxels: floats), to: path)
        files.append((path, "float32", 1, floats.map(Double.init)))

        path = scratch.path("int16.nii")
        try NIfTI.write(try Volume(grid: grid, voxels: stored.map { $0 * slope + intercept }), to: path,
                        datatype: .int16, slope: slope, intercept: intercept)
        // The file holds float32 slope and intercept; nibabel and qsmbench both apply those.
        files.append((path, "int16", 1, stored.map { $0 * Double(Float(slope)) + Double(Float(intercept)) }))

        path = scratch.path("float64-4d.nii.gz")
        let fourD = (0..<2 * n).map { Double($0) / 7 }
        try NIfTI.write(try Volume(grid: grid, frames: 2, voxels: fourD), to: path, datatype: .float64, version: .nifti2)
        files.append((path, "float64", 2, fourD))

        let result = try #require(runPython(reportScript, files.map(\.path)))
        #expect(result.status == 0)
        let views = try JSONDecoder().decode([NibabelView].self, from: result.output)
        #expect(views.count == files.count)
        for (view, file) in zip(views, files) {
            let name = URL(fileURLWithPath: file.path).lastPathComponent
            #expect(view.dtype == file.dtype, "\(name)")
            #expect(view.shape == [5, 4, 3] + (file.frames > 1 ? [file.frames] : []), "\(name)")
            #expect(view.qform_code == 1 && view.sform_code == 1, "\(name)")
            // NIfTI-1 geometry is float32 (entries ≤ 100 mm: ≤ 1e-5); NIfTI-2 float64.
            let tolerance = name.hasPrefix("float64") ? 1e-9 : 1e-5
            let affine = Affine(rowMajor: view.affine.flatMap { $0 })
            let qform = Affine(rowMajor: view.qform.flatMap { $0 })
            #expect(largestEntryDifference(affine, oblique) < tolerance, "\(name) sform")
            #expect(largestEntryDifference(qform, oblique) < tolerance, "\(name) qform (quaternion, qfac)")
            for axis in 0..<3 { #expect(abs(view.zooms[axis] - grid.voxelSize[axis]) < 1e-6) }
            // Values: float types are stored exactly; int16 scaling may run in float32 in nibabel.
            #expect(view.values.count == file.values.count)
            #expect(zip(view.values, file.values).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }, "\(name)")
        }
    }
}
