import Foundation
import QSMCore
import QSMMetrics

/// The formula-defined volumes of shared/reference/metric-vectors (generate.py), rebuilt in Double
/// with the same operation order as numpy so the inputs agree to the last bits or so.
enum VectorVolumes {
    static let shape = SIMD3(24, 20, 16)
    static let grid = Grid(shape: shape)
    static let reconNames = ["identical", "scaled_offset", "additive_ripple", "box_blur_x", "constant_offset"]

    /// M(x,y,z) = ((x−11.5)/10)² + ((y−9.5)/8)² + ((z−7.5)/6)² ≤ 1.
    static let mask: Mask = {
        var m = Mask(grid: grid, repeating: false)
        forEachVoxel { x, y, z, i in
            let a = (x - 11.5) / 10, b = (y - 9.5) / 8, c = (z - 7.5) / 6
            m.voxels[i] = a * a + b * b + c * c <= 1
        }
        return m
    }()

    /// B = 0.1·sin(2πx/24)·cos(2πy/20) + 0.05·(z/16) on the whole grid.
    static let base: Volume<Double> = {
        var v = Volume<Double>(zeros: grid)
        forEachVoxel { x, y, z, i in
            v.voxels[i] = 0.1 * Double.sin(2 * Double.pi * x / 24) * Double.cos(2 * Double.pi * y / 20) + 0.05 * (z / 16)
        }
        return v
    }()

    /// T = M·B.
    static let truth: Volume<Double> = base.masked(by: mask)

    /// The reconstruction variants, each multiplied by M.
    static func recon(_ name: String) -> Volume<Double> {
        var v = Volume<Double>(zeros: grid)
        let t = truth
        forEachVoxel { x, y, z, i in
            let value: Double
            switch name {
            case "identical": value = t.voxels[i]
            case "scaled_offset": value = 0.8 * t.voxels[i] + 0.01
            case "additive_ripple": value = t.voxels[i] + 0.02 * Double.cos(2 * Double.pi * (x + y + z) / 7)
            case "box_blur_x":
                let xi = Int(x), yi = Int(y), zi = Int(z)
                let left = xi > 0 ? t[xi - 1, yi, zi] : 0, right = xi < shape.x - 1 ? t[xi + 1, yi, zi] : 0
                value = (left + t.voxels[i] + right) / 3
            case "constant_offset": value = t.voxels[i] + 0.02
            default: preconditionFailure("unknown recon \(name)")
            }
            v.voxels[i] = mask.voxels[i] ? value : 0
        }
        return v
    }

    static func forEachVoxel(_ body: (Double, Double, Double, Int) -> Void) {
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            body(Double(x), Double(y), Double(z), grid.index(x, y, z))
        } } }
    }

    /// vectors.json, a copy of shared/reference/metric-vectors/vectors.json.
    static func loadVectors() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/metric-vectors.json")
        let data = try Data(contentsOf: url)
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// In-mask values, in voxel order.
    static func inMask(_ v: Volume<Double>) -> [Double] {
        zip(v.voxels, mask.voxels).compactMap { $1 ? $0 : nil }
    }
}

/// |actual − expected| ≤ 1e-6·|expected| (the requirement), or, for expected values that are
/// rounding noise around an exact 0 (|expected| < 1e-9, e.g. 4.4e-14 from polyfit), |actual| < 1e-9.
func agrees(_ actual: Double?, _ expected: Double) -> Bool {
    guard let actual else { return false }
    if abs(expected) < 1e-9 { return abs(actual) < 1e-9 }
    return abs(actual - expected) <= 1e-6 * abs(expected)
}
