import Testing
import QSMPipeline

@Suite struct TKDTests {
    /// χ = cos(2π·3z/N) has k ∥ B0, where D = −2/3 exactly (|D| > δ), so the field is −(2/3)χ and
    /// TKD inverts it exactly; Float FFT rounding (~1e-6 relative × log n) bounds the error.
    @Test func modeAlongB0IsRecovered() throws {
        let grid = Grid(shape: SIMD3(16, 16, 32))
        var chi = [Float](repeating: 0, count: grid.count)
        for z in 0..<32 { for y in 0..<16 { for x in 0..<16 {
            chi[grid.index(x, y, z)] = Float(Double.cos(2 * Double.pi * 3 * Double(z) / 32))
        } } }
        let field = try Volume(grid: grid, voxels: chi.map { -2 / 3 * $0 })
        let out = try TKD().apply(localField: field, mask: Mask(grid: grid, repeating: true), context: StageContext())
        let worst = zip(out.voxels, chi).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5)
    }

    /// A mode perpendicular to B0 has D = 1/3; the magic-angle mode (k at 54.7°) is truncated to 1/δ.
    @Test func truncationAtTheMagicCone() throws {
        let grid = Grid(shape: SIMD3(32, 32, 32))
        var field = [Float](repeating: 0, count: grid.count)
        for z in 0..<32 { for y in 0..<32 { for x in 0..<32 {
            field[grid.index(x, y, z)] = Float(Double.cos(2 * Double.pi * 4 * Double(x) / 32))
        } } }
        let out = try TKD().apply(localField: try Volume(grid: grid, voxels: field),
                                  mask: Mask(grid: grid, repeating: true), context: StageContext())
        // D = 1/3 > 0.15 ⇒ χ = 3·field.
        #expect(zip(out.voxels, field).map { abs($0 - 3 * $1) }.max()! < 1e-5)
    }
}

@Suite struct ReferencingTests {
    @Test func meanOverMaskAndOverLabel() throws {
        let grid = Grid(shape: SIMD3(4, 4, 2))
        let chi = try Volume(grid: grid, voxels: (0..<32).map { Float($0) })
        var mask = Mask(grid: grid, repeating: true)
        mask.voxels[31] = false
        let whole = try MeanReference().apply(susceptibility: chi, mask: mask, segmentation: nil, context: StageContext())
        // Mean of 0…30 is 15.
        #expect(whole.voxels[0] == -15 && whole.voxels[30] == 15 && whole.voxels[31] == 0)
        let labels = try Volume(grid: grid, voxels: (0..<32).map { Int32($0 < 4 ? 2 : 1) })
        var p = MeanReference.Parameters()
        p.label = 2
        let byLabel = try MeanReference(p).apply(susceptibility: chi, mask: mask, segmentation: labels, context: StageContext())
        #expect(byLabel.voxels[0] == -1.5 && byLabel.voxels[10] == 8.5)     // mean of 0…3 is 1.5
        #expect(throws: QSMError.invalidParameter("reference.label", "label 2 needs a segmentation (--seg)")) {
            try MeanReference(p).apply(susceptibility: chi, mask: mask, segmentation: nil, context: StageContext())
        }
        p.label = 7
        #expect(throws: QSMError.invalidParameter("reference.label", "no voxel of label 7 lies inside the mask")) {
            try MeanReference(p).apply(susceptibility: chi, mask: mask, segmentation: labels, context: StageContext())
        }
    }
}
