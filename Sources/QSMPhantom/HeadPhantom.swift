import QSMCore

/// Settings of the built-in numerical head.
public struct HeadPhantomSettings: Sendable, Hashable {
    /// Tissue properties (default: the built-in `phantoms/head-tissues.yaml`).
    public var tissues: TissueTable?
    /// Field strength (T) R2* is scaled to (see `TissueTable.r2starFieldScaling`).
    public var fieldStrength: Double = 3
    /// Adds a 2.5 mm calcification in right frontal white matter.
    public var calcification: Bool = false
    /// Sub-samples per axis in voxels that touch a tissue boundary (default 3: 27 samples).
    public var supersampling: Int = 3

    /// The defaults.
    public init() {}
}

extension Phantom {
    /// The built-in numerical head on `grid` (any matrix and voxel size).
    ///
    /// The anatomy (`HeadGeometry`) is defined in millimetres for a 164×204×176 mm box; it is centred
    /// in the field of view and shrunk uniformly when the field of view is smaller (never enlarged).
    /// Shrinking leaves fields unchanged, since the dipole field of a χ distribution does not depend
    /// on its absolute size. Voxels whose centre label differs from a face neighbour's are sub-sampled
    /// (`supersampling`³ points): χ, M0 and R2* are the sample means, the mask holds voxels whose
    /// samples are at least half intracranial, and the label is the majority on the mask's side. The
    /// local field comes from the intracranial fraction of every mask voxel's χ (`localSources`), so
    /// bone and air in mask-edge voxels count as background sources, as they physically are. Deterministic: no
    /// randomness is involved.
    public static func head(grid: Grid, settings: HeadPhantomSettings = .init()) throws(QSMError) -> Phantom {
        guard all(grid.voxelSize .> 0), (0..<3).allSatisfy({ grid.voxelSize[$0].isFinite }) else {
            throw .invalidOption("--voxel", "\(grid.voxelSize) must be positive")
        }
        guard settings.supersampling >= 1 && settings.supersampling <= 8 else {
            throw .invalidParameter("phantom.supersampling", "\(settings.supersampling) is outside 1…8")
        }
        guard settings.fieldStrength.isFinite, settings.fieldStrength > 0 else {
            throw .invalidOption("--b0", "\(settings.fieldStrength) T must be positive")
        }
        let table: TissueTable
        if let given = settings.tissues { table = given } else { table = try TissueTable.builtIn() }
        try table.validate(source: "tissue table")
        let geometry = HeadGeometry(calcification: settings.calcification)
        let fov = grid.voxelSize * SIMD3<Double>(Double(grid.shape.x), Double(grid.shape.y), Double(grid.shape.z))
        let scale = min(1, (fov / HeadGeometry.referenceExtent).min())

        // Per-label properties indexed by raw label.
        let labelCount = (HeadLabel.allCases.map(\.rawValue).max() ?? 0) + 1   // labels are sparse (challenge numbering)
        var chiOf = [Double](repeating: 0, count: labelCount), m0Of = chiOf, r2Of = chiOf
        var inMask = [Bool](repeating: false, count: labelCount)
        for label in HeadLabel.allCases {
            let t = table.tissue(label)
            chiOf[label.rawValue] = t.chi
            m0Of[label.rawValue] = t.m0
            r2Of[label.rawValue] = table.r2star(t, at: settings.fieldStrength)
            inMask[label.rawValue] = t.inMask
        }
        if !settings.calcification { inMask[HeadLabel.calcification.rawValue] = inMask[HeadLabel.whiteMatter.rawValue] }
        let (chiTable, m0Table, r2Table, maskTable) = (chiOf, m0Of, r2Of, inMask)

        // 1. Label at every voxel centre.
        let n = grid.shape
        var centreLabels = [UInt8](repeating: 0, count: grid.count)
        centreLabels.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(buffer.baseAddress!)
            parallelFor(0..<n.z) { zs in
                for z in zs { for y in 0..<n.y { for x in 0..<n.x {
                    let p = PartialVolume.position(x, y, z, grid: grid) / scale
                    out[x + n.x * (y + n.y * z)] = UInt8(geometry.label(p).rawValue)
                } } }
            }
        }

        // 2. Properties: pure voxels from the table, boundary voxels from sub-samples.
        let bufferChi = UnsafeMutableBufferPointer<Float>.allocate(capacity: grid.count)
        let bufferM0 = UnsafeMutableBufferPointer<Float>.allocate(capacity: grid.count)
        let bufferR2 = UnsafeMutableBufferPointer<Float>.allocate(capacity: grid.count)
        let bufferLocal = UnsafeMutableBufferPointer<Float>.allocate(capacity: grid.count)
        let bufferLabel = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: grid.count)
        let bufferMask = UnsafeMutableBufferPointer<Bool>.allocate(capacity: grid.count)
        defer {
            bufferChi.deallocate(); bufferM0.deallocate(); bufferR2.deallocate(); bufferLocal.deallocate()
            bufferLabel.deallocate(); bufferMask.deallocate()
        }
        let s = settings.supersampling
        centreLabels.withUnsafeBufferPointer { centreBuffer in
            let centres = SendablePointer(UnsafeMutablePointer(mutating: centreBuffer.baseAddress!))
            let pChi = SendablePointer(bufferChi.baseAddress!), pM0 = SendablePointer(bufferM0.baseAddress!)
            let pR2 = SendablePointer(bufferR2.baseAddress!), pLabel = SendablePointer(bufferLabel.baseAddress!)
            let pMask = SendablePointer(bufferMask.baseAddress!), pLocal = SendablePointer(bufferLocal.baseAddress!)
            parallelFor(0..<n.z) { zs in
                var counts = [Int](repeating: 0, count: labelCount)
                for z in zs { for y in 0..<n.y { for x in 0..<n.x {
                    let i = x + n.x * (y + n.y * z)
                    let own = centres[i]
                    var boundary = false
                    if s > 1 {
                        if x > 0 && centres[i - 1] != own || x + 1 < n.x && centres[i + 1] != own
                            || y > 0 && centres[i - n.x] != own || y + 1 < n.y && centres[i + n.x] != own
                            || z > 0 && centres[i - n.x * n.y] != own || z + 1 < n.z && centres[i + n.x * n.y] != own {
                            boundary = true
                        }
                    }
                    if !boundary {
                        let l = Int(own)
                        pChi[i] = Float(chiTable[l]); pM0[i] = Float(m0Table[l]); pR2[i] = Float(r2Table[l])
                        pLabel[i] = own; pMask[i] = maskTable[l]
                        pLocal[i] = maskTable[l] ? pChi[i] : 0
                        continue
                    }
                    for l in 0..<labelCount { counts[l] = 0 }
                    let centre = PartialVolume.position(x, y, z, grid: grid)
                    for k in 0..<s { for j in 0..<s { for m in 0..<s {
                        let offset = (SIMD3<Double>(Double(m), Double(j), Double(k)) + 0.5) / Double(s) - 0.5
                        counts[geometry.label((centre + offset * grid.voxelSize) / scale).rawValue] += 1
                    } } }
                    var sumChi = 0.0, sumLocal = 0.0, sumM0 = 0.0, sumR2 = 0.0, inside = 0
                    for l in 0..<labelCount where counts[l] > 0 {
                        let c = Double(counts[l])
                        sumChi += c * chiTable[l]; sumM0 += c * m0Table[l]; sumR2 += c * r2Table[l]
                        if maskTable[l] { inside += counts[l]; sumLocal += c * chiTable[l] }
                    }
                    let total = Double(s * s * s)
                    let masked = 2 * inside >= s * s * s
                    // The label is the majority among the sub-samples on the mask's side, so the
                    // segmentation and the mask agree voxel by voxel.
                    var best = -1
                    for l in 0..<labelCount where counts[l] > 0 && maskTable[l] == masked {
                        if best < 0 || counts[l] > counts[best] { best = l }
                    }
                    pChi[i] = Float(sumChi / total); pM0[i] = Float(sumM0 / total); pR2[i] = Float(sumR2 / total)
                    pLocal[i] = Float(sumLocal / total)
                    pLabel[i] = UInt8(best); pMask[i] = masked
                } } }
            }
        }

        let labelTable = HeadLabel.allCases.filter { $0 != .air && ($0 != .calcification || settings.calcification) }.map { label in
            let t = table.tissue(label)
            return SegmentationLabel(index: label.rawValue, name: t.name, chi: t.chi, m0: t.m0,
                                     r2star: table.r2star(t, at: settings.fieldStrength))
        }
        return Phantom(
            name: "head", chi: try Volume(grid: grid, voxels: Array(bufferChi)),
            mask: try Volume(grid: grid, voxels: Array(bufferMask)),
            m0: try Volume(grid: grid, voxels: Array(bufferM0)), r2star: try Volume(grid: grid, voxels: Array(bufferR2)),
            segmentation: try Volume(grid: grid, voxels: Array(bufferLabel)), labels: labelTable,
            b0Direction: SIMD3(0, 0, 1), paddingFactor: SIMD3(repeating: 2), fieldStrength: settings.fieldStrength,
            localSources: try Volume(grid: grid, voxels: Array(bufferLocal)))
    }
}
