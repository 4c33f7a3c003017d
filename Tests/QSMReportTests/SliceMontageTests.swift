import QSMReport
import Testing

@Suite struct SliceMontageTests {
    /// A 20×16×12 volume, zero except a cube x 3…6, y 9…12, z 2…4 of `value`.
    static func cubeVolume(value: Float, voxelSize: SIMD3<Double> = .one) throws -> Volume<Float> {
        var volume = Volume<Float>(zeros: Grid(shape: SIMD3(20, 16, 12), voxelSize: voxelSize))
        for z in 2...4 { for y in 9...12 { for x in 3...6 { volume[x, y, z] = value } } }
        return volume
    }

    /// Grey of 0 ppm in the −0.15…0.25 window: 255 · 0.15/0.40 = 95.6 → 96.
    static let zeroGrey = RGBColor(grey: 96)

    @Test func cubeAppearsWhereExpectedInEachView() throws {
        let truth = try Self.cubeVolume(value: 0.25)  // the window's upper end: white
        var montage = try SliceMontage.truthEstimateError(truth: truth, estimate: truth)
        montage.center = SIMD3(4, 10, 3)
        montage.magnification = 2
        let image = try montage.render()
        let panels = try montage.panelRectangles()
        let (axial, coronal, sagittal) = (panels[0][0], panels[0][1], panels[0][2])
        // Magnification 2 on 1 mm voxels: each voxel is 2×2 pixels; image rows run down while y and z run up.
        #expect(axial.width == 40 && axial.height == 32 && coronal.height == 24 && sagittal.width == 32)
        // Axial (z = 3): x 3…6 → columns 6…13; y 9…12 → rows (15−12)·2 = 6 … (15−9)·2+1 = 13.
        #expect(image[axial.x + 6, axial.y + 6] == .white && image[axial.x + 13, axial.y + 13] == .white)
        #expect(image[axial.x + 5, axial.y + 6] == Self.zeroGrey && image[axial.x + 6, axial.y + 5] == Self.zeroGrey)
        #expect(image[axial.x + 14, axial.y + 13] == Self.zeroGrey && image[axial.x + 13, axial.y + 14] == Self.zeroGrey)
        var whiteCount = 0
        for j in 0..<axial.height { for i in 0..<axial.width where image[axial.x + i, axial.y + j] == .white { whiteCount += 1 } }
        #expect(whiteCount == 8 * 8)
        // Coronal (y = 10): x → columns 6…13; z 2…4 → rows (11−4)·2 = 14 … (11−2)·2+1 = 19.
        #expect(image[coronal.x + 6, coronal.y + 14] == .white && image[coronal.x + 13, coronal.y + 19] == .white)
        #expect(image[coronal.x + 6, coronal.y + 13] == Self.zeroGrey && image[coronal.x + 6, coronal.y + 20] == Self.zeroGrey)
        // Sagittal (x = 4): y 9…12 → columns 18…25; z as in the coronal view.
        #expect(image[sagittal.x + 18, sagittal.y + 14] == .white && image[sagittal.x + 25, sagittal.y + 19] == .white)
        #expect(image[sagittal.x + 17, sagittal.y + 14] == Self.zeroGrey && image[sagittal.x + 26, sagittal.y + 19] == Self.zeroGrey)
        // The error row (estimate = truth) is the diverging map's white, ColorBrewer #F7F7F7.
        #expect(image[panels[2][0].x + 6, panels[2][0].y + 6] == RGBColor(0xF7, 0xF7, 0xF7))
    }

    /// 2.5 mm slices at 1 mm in-plane: the coronal panel is 2.5× taller per voxel than wide.
    @Test func anisotropicVoxelsKeepTheirAspect() throws {
        let grid = Grid(shape: SIMD3(8, 8, 4), voxelSize: SIMD3(1, 1, 2.5))
        var volume = Volume<Float>(zeros: grid)
        for y in 0..<8 { for x in 0..<8 { volume[x, y, 1] = 0.25 } }
        var montage = SliceMontage(rows: [.init(label: "chi", volume: volume, colorMap: try .grey(lower: -0.15, upper: 0.25))])
        montage.magnification = 2
        let image = try montage.render()
        let coronal = try montage.panelRectangles()[0][1]
        // 0.5 mm pixels: 8 mm wide → 16 px; 10 mm tall → 20 px; z = 1 covers rows 10…14 (5 px = 2.5 mm).
        #expect(coronal.width == 16 && coronal.height == 20)
        for j in 0..<20 {
            #expect((image[coronal.x + 3, coronal.y + j] == .white) == (10...14).contains(j), "row \(j)")
        }
    }

    @Test func colorBarEndsMapToTheWindowEnds() throws {
        let truth = try Self.cubeVolume(value: 0.1)
        var estimate = truth
        for z in 2...4 { for y in 9...12 { for x in 3...6 { estimate[x, y, z] += 0.1 } } }  // error = +limit
        var montage = try SliceMontage.truthEstimateError(truth: truth, estimate: estimate, errorLimit: 0.1)
        montage.center = SIMD3(4, 10, 3)
        montage.magnification = 2
        let image = try montage.render()
        let bars = try montage.colorBarRectangles()
        let grey = bars[0], error = bars[2]
        #expect(image[grey.x + 1, grey.y] == .white && image[grey.x + 1, grey.y + grey.height - 1] == .black)
        // ColorBrewer RdBu ends: #CA0020 (positive, top) and #0571B0 (negative, bottom).
        #expect(image[error.x + 1, error.y] == RGBColor(0xCA, 0x00, 0x20))
        #expect(image[error.x + 1, error.y + error.height - 1] == RGBColor(0x05, 0x71, 0xB0))
        // The cube's error equals the limit, so it is drawn in the bar's top colour.
        let axialError = try montage.panelRectangles()[2][0]
        #expect(image[axialError.x + 6, axialError.y + 6] == RGBColor(0xCA, 0x00, 0x20))
        // The bars carry tick labels: dark text pixels right of each bar.
        var dark = 0
        for y in grey.y..<grey.y + grey.height { for x in grey.x + grey.width + 4..<image.width where image[x, y] == .black { dark += 1 } }
        #expect(dark > 20)
    }

    @Test func maskedVoxelsUseTheOutsideColor() throws {
        let truth = try Self.cubeVolume(value: 0.25)
        var mask = Mask(grid: truth.grid, repeating: false)
        for z in 2...4 { for y in 9...12 { for x in 3...6 { mask[x, y, z] = true } } }
        var montage = try SliceMontage.truthEstimateError(truth: truth, estimate: truth, mask: mask)
        montage.center = SIMD3(4, 10, 3)
        montage.outsideColor = RGBColor(0, 40, 0)
        montage.magnification = 2
        let image = try montage.render()
        let axial = try montage.panelRectangles()[0][0]
        #expect(image[axial.x, axial.y] == RGBColor(0, 40, 0) && image[axial.x + 6, axial.y + 6] == .white)
    }

    /// Automatic magnification: the 20 mm extent needs ⌈160/20⌉ = 8 pixels per 1 mm voxel.
    @Test func automaticMagnificationMakesReadablePanels() throws {
        let truth = try Self.cubeVolume(value: 0.1)
        let axial = try SliceMontage.truthEstimateError(truth: truth, estimate: truth).panelRectangles()[0][0]
        #expect(axial.width == 160 && axial.height == 128)
    }

    @Test func badInputsAreNamed() throws {
        let truth = try Self.cubeVolume(value: 0.1)
        var montage = try SliceMontage.truthEstimateError(truth: truth, estimate: truth)
        montage.center = SIMD3(20, 0, 0)
        #expect(throws: QSMError.invalidParameter("montage centre", "voxel (20, 0, 0) is outside the grid 20×16×12")) {
            try montage.render()
        }
        let other = Volume<Float>(zeros: Grid(shape: SIMD3(4, 4, 4)))
        #expect(throws: QSMError.mismatch("estimate", "shape 4×4×4 differs from truth (20×16×12)")) {
            try SliceMontage.truthEstimateError(truth: truth, estimate: other)
        }
    }

    /// The montage is a valid PNG: the independent test decoder gets every sample back.
    @Test func encodesToAValidPNG() throws {
        let truth = try Self.cubeVolume(value: 0.2)
        let image = try SliceMontage.truthEstimateError(truth: truth, estimate: truth.map { $0 * 0.9 }).render()
        let decoded = try DecodedPNG(try image.encoded())
        #expect(decoded.width == image.width && decoded.height == image.height && decoded.samples == image.samples)
    }
}

@Suite struct BitmapFontTests {
    /// The "1" glyph: row 0 is "..#..", row 6 is ".###." (5×7 design in BitmapFont.swift).
    @Test func glyphPixelsAreDrawnAtScale() throws {
        var image = try PNGImage(width: 12, height: 16, colorType: .greyscale)
        image.drawText("1", x: 1, y: 1, scale: 2)
        let dark = { (x: Int, y: Int) in image[x, y] == .black }
        #expect(dark(1 + 4, 1) && dark(1 + 5, 2) && !dark(1 + 3, 1) && !dark(1 + 6, 1))
        #expect(dark(1 + 2, 1 + 12) && dark(1 + 7, 1 + 13) && !dark(1 + 1, 1 + 12) && !dark(1 + 8, 1 + 12))
        #expect(BitmapFont.width(of: "ppm", scale: 2) == 34)  // (3·6 − 1)·2
    }

    /// Upper case draws as lower case; unknown characters as a hollow box (never nothing).
    @Test func caseFoldingAndFallback() throws {
        var upper = try PNGImage(width: 6, height: 7, colorType: .greyscale)
        var lower = upper
        upper.drawText("T", x: 0, y: 0)
        lower.drawText("t", x: 0, y: 0)
        #expect(upper == lower)
        var box = try PNGImage(width: 6, height: 7, colorType: .greyscale)
        box.drawText("@", x: 0, y: 0)
        #expect(box[0, 0] == .black && box[4, 6] == .black && box[2, 3] == .white)
    }
}
