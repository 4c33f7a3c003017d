import QSMCore

/// One entry of a segmentation's label table.
public struct SegmentationLabel: Sendable, Hashable, Codable {
    /// The integer stored in the segmentation volume.
    public var index: Int
    /// Tissue name (BIDS `dseg.tsv` column `name`).
    public var name: String
    /// Susceptibility of the pure tissue, ppm.
    public var chi: Double
    /// Proton density (relative).
    public var m0: Double
    /// R2* of the pure tissue at the phantom's field strength, s⁻¹.
    public var r2star: Double

    /// A label table entry.
    public init(index: Int, name: String, chi: Double, m0: Double, r2star: Double) {
        self.index = index
        self.name = name
        self.chi = chi
        self.m0 = m0
        self.r2star = r2star
    }
}

/// A numerical phantom: tissue property maps on one grid, the truth every benchmark scores against.
public struct Phantom: Sendable {
    /// Short name, used as the BIDS subject label.
    public var name: String
    /// Susceptibility, ppm.
    public var chi: Volume<Float>
    /// Region whose sources make the local field (the brain for `head`); the evaluation mask.
    public var mask: Mask
    /// Proton density (relative units).
    public var m0: Volume<Float>
    /// R2*, s⁻¹, at `fieldStrength`.
    public var r2star: Volume<Float>
    /// Label per voxel (majority of the sub-samples); 0 = background.
    public var segmentation: Volume<UInt8>
    /// The label table of `segmentation`.
    public var labels: [SegmentationLabel]
    /// B0 direction (voxel axes) the phantom is defined for (the cylinder's angle lives here).
    public var b0Direction: SIMD3<Double>
    /// Padding the forward model needs per axis (1 = periodic, e.g. along an infinite cylinder).
    public var paddingFactor: SIMD3<Double>
    /// Field strength (T) the R2* values belong to.
    public var fieldStrength: Double
    /// χ (ppm) of the local field's sources where it is not simply χ (the head counts only the
    /// intracranial fraction of partial-volume voxels); taken inside the mask; nil = χ.
    public var localSources: Volume<Float>?

    /// A phantom from its maps; see the properties for units.
    public init(name: String, chi: Volume<Float>, mask: Mask, m0: Volume<Float>, r2star: Volume<Float>,
                segmentation: Volume<UInt8>, labels: [SegmentationLabel], b0Direction: SIMD3<Double> = SIMD3(0, 0, 1),
                paddingFactor: SIMD3<Double> = SIMD3(repeating: 2), fieldStrength: Double = 3,
                localSources: Volume<Float>? = nil) {
        self.name = name
        self.chi = chi
        self.mask = mask
        self.m0 = m0
        self.r2star = r2star
        self.segmentation = segmentation
        self.labels = labels
        self.b0Direction = b0Direction
        self.paddingFactor = paddingFactor
        self.fieldStrength = fieldStrength
        self.localSources = localSources
    }

    /// The grid of every map.
    public var grid: Grid { chi.grid }

    /// The sources of the local field: `localSources` (or χ) inside the mask, 0 outside. Sources
    /// outside the mask, such as the intracranial fraction of a voxel less than half intracranial,
    /// are background: their field is harmonic in the mask, and background removal removes it.
    public var localChi: Volume<Float> { (localSources ?? chi).masked(by: mask) }

    /// The sources of the background field: χ − `localChi`.
    public var backgroundChi: Volume<Float> {
        var out = chi
        let local = localChi
        for i in out.voxels.indices { out.voxels[i] -= local.voxels[i] }
        return out
    }
}

/// Voxel coverage by sub-sampling, so object boundaries are partial-volume instead of jagged.
enum PartialVolume {
    /// Position (mm) of voxel (x, y, z)'s centre relative to the grid centre.
    @inline(__always)
    static func position(_ x: Int, _ y: Int, _ z: Int, grid: Grid) -> SIMD3<Double> {
        let index = SIMD3<Double>(Double(x), Double(y), Double(z))
        let centre = SIMD3<Double>(Double(grid.shape.x - 1), Double(grid.shape.y - 1), Double(grid.shape.z - 1)) / 2
        return (index - centre) * grid.voxelSize
    }

    /// Fraction of the voxel centred at `centre` (mm) with `size` (mm) where `inside` holds, from
    /// `samples`³ points on a regular sub-grid (midpoint rule).
    @inline(__always)
    static func fraction(centre: SIMD3<Double>, size: SIMD3<Double>, samples: Int,
                         _ inside: (SIMD3<Double>) -> Bool) -> Double {
        var hits = 0
        let s = Double(samples)
        for k in 0..<samples {
            for j in 0..<samples {
                for i in 0..<samples {
                    let offset = (SIMD3<Double>(Double(i), Double(j), Double(k)) + 0.5) / s - 0.5
                    if inside(centre + offset * size) { hits += 1 }
                }
            }
        }
        return Double(hits) / (s * s * s)
    }

    /// Coverage of every voxel by a convex-ish object given its signed distance estimate (mm,
    /// negative inside): voxels farther than half a diagonal from the surface are 0 or 1 outright,
    /// the rest are sub-sampled with `inside`.
    static func coverage(grid: Grid, samples: Int, distance: @Sendable (SIMD3<Double>) -> Double,
                         inside: @Sendable (SIMD3<Double>) -> Bool) -> [Double] {
        var out = [Double](repeating: 0, count: grid.count)
        let halfDiagonal = 0.5 * (grid.voxelSize * grid.voxelSize).sum().squareRoot()
        out.withUnsafeMutableBufferPointer { buffer in
            let p = SendablePointer(buffer.baseAddress!)
            parallelFor(0..<grid.shape.z) { zs in
                for z in zs {
                    for y in 0..<grid.shape.y {
                        for x in 0..<grid.shape.x {
                            let c = position(x, y, z, grid: grid)
                            let d = distance(c)
                            let value: Double
                            if d <= -halfDiagonal { value = 1 } else if d >= halfDiagonal { value = 0 } else {
                                value = fraction(centre: c, size: grid.voxelSize, samples: samples, inside)
                            }
                            p[grid.index(x, y, z)] = value
                        }
                    }
                }
            }
        }
        return out
    }
}
