import QSMCore

/// Settings of the `sphere` and `cylinder` phantoms, whose fields have closed forms (QSM.md §2.6).
public struct AnalyticPhantomSettings: Sendable, Hashable {
    /// χ inside the object, ppm (default 0.1).
    public var chi: Double = 0.1
    /// χ of the uniform surround, ppm (default 0).
    public var surroundChi: Double = 0
    /// Object radius, mm (default: a quarter of the smallest field-of-view extent).
    public var radius: Double?
    /// Cylinder axis angle to B0, degrees (default 90); the cylinder lies along the third voxel axis.
    public var angleDegrees: Double = 90
    /// Sub-samples per axis in boundary voxels (default 5: coverage steps of 1/125).
    public var supersampling: Int = 5
    /// M0 everywhere (water-like medium).
    public var m0: Double = 1
    /// R2* everywhere, s⁻¹ (a water-like medium; the decay then does not depend on position).
    public var r2star: Double = 20

    /// The defaults.
    public init() {}
}

extension Phantom {
    /// A uniformly magnetised sphere centred in the grid; mask = a ball of 0.45× the smallest field of view.
    public static func sphere(grid: Grid, settings: AnalyticPhantomSettings = .init()) throws(QSMError) -> Phantom {
        let radius = try checkedRadius(settings, grid: grid, extent: grid.shape)
        let r = radius
        let coverage = PartialVolume.coverage(
            grid: grid, samples: settings.supersampling,
            distance: { p in (p * p).sum().squareRoot() - r }, inside: { p in (p * p).sum() < r * r })
        let fov = grid.voxelSize * SIMD3<Double>(Double(grid.shape.x), Double(grid.shape.y), Double(grid.shape.z))
        let maskRadius = 0.45 * fov.min()
        var mask = Mask(grid: grid, repeating: false)
        for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
            let p = PartialVolume.position(x, y, z, grid: grid)
            mask[x, y, z] = (p * p).sum() <= maskRadius * maskRadius
        } } }
        return try assemble(name: "sphere", grid: grid, coverage: coverage, mask: mask, settings: settings,
                            b0Direction: SIMD3(0, 0, 1), paddingFactor: SIMD3(repeating: 2))
    }

    /// An infinite cylinder along the third voxel axis at `angleDegrees` to B0, centred in x–y.
    ///
    /// The grid is periodic along the axis (padding factor 1 there), which makes the cylinder
    /// truly infinite; B0 is tilted in the x–z plane instead of tilting the cylinder, so the
    /// object never ends inside the box. Mask = a coaxial cylinder of 0.45× the smaller x–y field of view.
    public static func cylinder(grid: Grid, settings: AnalyticPhantomSettings = .init()) throws(QSMError) -> Phantom {
        guard settings.angleDegrees.isFinite else {
            throw .invalidOption("--angle", "\(settings.angleDegrees) is not a finite angle in degrees")
        }
        let radius = try checkedRadius(settings, grid: grid, extent: SIMD3(grid.shape.x, grid.shape.y, Int.max))
        let r = radius
        let coverage = PartialVolume.coverage(
            grid: grid, samples: settings.supersampling,
            distance: { p in (p.x * p.x + p.y * p.y).squareRoot() - r }, inside: { p in p.x * p.x + p.y * p.y < r * r })
        let fov = grid.voxelSize * SIMD3<Double>(Double(grid.shape.x), Double(grid.shape.y), Double(grid.shape.z))
        let maskRadius = 0.45 * min(fov.x, fov.y)
        var mask = Mask(grid: grid, repeating: false)
        for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
            let p = PartialVolume.position(x, y, z, grid: grid)
            mask[x, y, z] = p.x * p.x + p.y * p.y <= maskRadius * maskRadius
        } } }
        return try assemble(name: "cylinder", grid: grid, coverage: coverage, mask: mask, settings: settings,
                            b0Direction: Orientation.b0Direction(angleDegrees: settings.angleDegrees),
                            paddingFactor: SIMD3(2, 2, 1))
    }

    private static func checkedRadius(_ settings: AnalyticPhantomSettings, grid: Grid, extent: SIMD3<Int>) throws(QSMError) -> Double {
        guard settings.chi.isFinite, settings.surroundChi.isFinite else {
            throw .invalidOption("--chi", "\(settings.chi) is not a finite susceptibility in ppm")
        }
        guard settings.supersampling >= 1 && settings.supersampling <= 16 else {
            throw .invalidParameter("phantom.supersampling", "\(settings.supersampling) is outside 1…16")
        }
        guard all(grid.voxelSize .> 0) else {
            throw .invalidOption("--voxel", "\(grid.voxelSize) must be positive")
        }
        var half = Double.infinity
        for axis in 0..<3 where extent[axis] != Int.max {
            half = min(half, 0.5 * Double(extent[axis]) * grid.voxelSize[axis])
        }
        let radius = settings.radius ?? 0.5 * half
        guard radius.isFinite, radius > 0 else {
            throw .invalidOption("--radius", "\(radius) mm must be positive")
        }
        guard radius < 0.45 * 2 * half else {
            throw .invalidOption("--radius", "\(radius) mm does not fit inside the mask (at most \(0.9 * half) mm for this grid)")
        }
        return radius
    }

    private static func assemble(name: String, grid: Grid, coverage: [Double], mask: Mask,
                                 settings: AnalyticPhantomSettings, b0Direction: SIMD3<Double>,
                                 paddingFactor: SIMD3<Double>) throws(QSMError) -> Phantom {
        let chi = coverage.map { Float(settings.surroundChi + $0 * (settings.chi - settings.surroundChi)) }
        var segmentation = Volume<UInt8>(grid: grid, repeating: 0)
        for i in 0..<grid.count { segmentation.voxels[i] = coverage[i] >= 0.5 ? 2 : (mask.voxels[i] ? 1 : 0) }
        let labels = [
            SegmentationLabel(index: 1, name: "surround", chi: settings.surroundChi, m0: settings.m0, r2star: settings.r2star),
            SegmentationLabel(index: 2, name: name, chi: settings.chi, m0: settings.m0, r2star: settings.r2star),
        ]
        return Phantom(
            name: name, chi: try Volume(grid: grid, voxels: chi), mask: mask,
            m0: Volume(grid: grid, repeating: Float(settings.m0)),
            r2star: Volume(grid: grid, repeating: Float(settings.r2star)),
            segmentation: segmentation, labels: labels, b0Direction: b0Direction,
            paddingFactor: paddingFactor, fieldStrength: 3)
    }
}
