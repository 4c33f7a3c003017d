import Foundation
import QSMIO

/// A fresh temporary directory per test, removed when the value is released.
final class NIfTIScratch {
    let directory: String

    init() {
        directory = NSTemporaryDirectory() + "qsmio-nifti-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A path inside the directory.
    func path(_ name: String) -> String { directory + "/" + name }
}

/// An oblique affine: rotation by `degrees` about `axis`, voxel sizes `zooms`, optional reflection
/// of the first axis, then a translation. Built here independently of QSMIO's quaternion code.
func nifTITestAffine(
    axis: SIMD3<Double>, degrees: Double, zooms: SIMD3<Double>, offset: SIMD3<Double>, reflect: Bool = false
) -> Affine {
    let u = axis / (axis * axis).sum().squareRoot()
    let t = degrees * .pi / 180
    let (c, s) = (cos(t), sin(t))
    // Rodrigues' formula.
    let r: [[Double]] = [
        [c + u.x * u.x * (1 - c), u.x * u.y * (1 - c) - u.z * s, u.x * u.z * (1 - c) + u.y * s],
        [u.y * u.x * (1 - c) + u.z * s, c + u.y * u.y * (1 - c), u.y * u.z * (1 - c) - u.x * s],
        [u.z * u.x * (1 - c) - u.y * s, u.z * u.y * (1 - c) + u.x * s, c + u.z * u.z * (1 - c)],
    ]
    var entries = [Double](repeating: 0, count: 16)
    for row in 0..<3 {
        for column in 0..<3 {
            entries[row * 4 + column] = r[row][column] * zooms[column] * (reflect && column == 0 ? -1 : 1)
        }
        entries[row * 4 + 3] = offset[row]
    }
    entries[15] = 1
    return Affine(rowMajor: entries)
}

/// Largest absolute difference between two affines' entries.
func largestEntryDifference(_ a: Affine, _ b: Affine) -> Double {
    zip(a.entries, b.entries).map { abs($0 - $1) }.max() ?? .infinity
}

/// The file's bytes.
func nifTIBytes(_ path: String) -> [UInt8] {
    (FileManager.default.contents(atPath: path).map { [UInt8]($0) }) ?? []
}

/// Writes raw bytes to a path.
func nifTIWriteBytes(_ bytes: [UInt8], _ path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}
