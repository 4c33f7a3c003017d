import Foundation

/// Axial, coronal and sagittal slices of several volumes in a grid, each row with a colour bar.
///
/// Slices are cut along voxel axes (no resampling through the affine) and scaled by nearest
/// neighbour so that every image pixel covers the same distance in millimetres: anisotropic
/// voxels keep their true aspect. Text uses `BitmapFont`, so rendering needs no system fonts.
public struct SliceMontage: Sendable {
    /// One row of the montage: a label, a 3-D volume and the colour map that draws it.
    public struct Row: Sendable {
        /// Shown left of the row, e.g. "truth".
        public var label: String
        /// The volume (one frame).
        public var volume: Volume<Float>
        /// Fixed value window and colours; shown as the row's colour bar.
        public var colorMap: ColorMap

        /// A row from its parts.
        public init(label: String, volume: Volume<Float>, colorMap: ColorMap) {
            self.label = label
            self.volume = volume
            self.colorMap = colorMap
        }
    }

    /// The rows, top to bottom; all volumes share one grid.
    public var rows: [Row]
    /// Optional title above the column headings.
    public var title: String?
    /// Voxel the three planes pass through; nil for the centre voxel (shape / 2).
    public var center: SIMD3<Int>?
    /// Voxels drawn in `outsideColor` instead of their value; nil draws every voxel.
    public var mask: Mask?
    /// Colour of voxels outside `mask`.
    public var outsideColor = RGBColor.black
    /// Image pixels along the smallest voxel edge (longer edges get proportionally more); nil
    /// picks the smallest integer (at least 2) that makes the largest panel ≥ 160 pixels.
    public var magnification: Int?
    /// Magnification of the 5×7 font.
    public var textScale = 2

    /// A montage of `rows`.
    public init(rows: [Row], title: String? = nil, center: SIMD3<Int>? = nil, mask: Mask? = nil) {
        self.rows = rows
        self.title = title
        self.center = center
        self.mask = mask
    }

    /// Rows "truth", "estimate" (grey over `window`, ppm) and "error" = estimate − truth
    /// (blue–white–red over ±`errorLimit` ppm).
    ///
    /// The default −0.15…+0.25 ppm window runs from below white matter (slightly negative) to
    /// above iron-rich deep grey matter (positive); veins and calcifications saturate on purpose,
    /// so that small tissue differences stay visible. Windows are fixed, never fitted to the
    /// data, so that montages of different methods compare by eye.
    public static func truthEstimateError(truth: Volume<Float>, estimate: Volume<Float>, mask: Mask? = nil,
                                          window: ClosedRange<Double> = -0.15...0.25,
                                          errorLimit: Double = 0.1) throws(QSMError) -> SliceMontage {
        try truth.grid.requireMatches(estimate.grid, "truth", "estimate")
        guard truth.frames == 1, estimate.frames == 1 else {
            throw .mismatch("montage", "truth and estimate must be 3-D volumes (one frame each)")
        }
        let grey = try ColorMap.grey(lower: window.lowerBound, upper: window.upperBound)
        guard errorLimit > 0, errorLimit.isFinite else {
            throw .invalidParameter("montage error limit", "\(errorLimit) ppm is not positive")
        }
        var error = estimate
        for i in error.voxels.indices { error.voxels[i] -= truth.voxels[i] }
        return SliceMontage(rows: [Row(label: "truth", volume: truth, colorMap: grey),
                                   Row(label: "estimate", volume: estimate, colorMap: grey),
                                   Row(label: "error", volume: error, colorMap: try .diverging(limit: errorLimit))],
                            mask: mask)
    }

    // MARK: - Layout

    private var padding: Int { 4 * textScale }
    private var textHeight: Int { BitmapFont.glyphHeight * textScale }
    private var barWidth: Int { 6 * textScale }

    /// Millimetres covered by one image pixel.
    private func pixelSize(_ grid: Grid) -> Double {
        let smallest = grid.voxelSize.min()
        if let magnification { return smallest / Double(magnification) }
        let extent = (SIMD3<Double>(grid.shape) * grid.voxelSize).max() / smallest  // in smallest voxels
        return smallest / max(2, (160 / extent).rounded(.up))
    }

    /// Shortest row: room for a colour bar with three legible tick labels.
    private var minimumRowHeight: Int { 5 * textHeight }

    /// Pixel extent of a slice drawn in `orientation`.
    private func panelSize(_ orientation: SliceOrientation, _ grid: Grid) -> (width: Int, height: Int) {
        let (h, v) = orientation.inPlaneAxes
        let p = pixelSize(grid)
        func pixels(_ axis: Int) -> Int {
            max(1, Int((Double(grid.shape[axis]) * grid.voxelSize[axis] / p).rounded()))
        }
        return (pixels(h), pixels(v))
    }

    private func checkInputs() throws(QSMError) -> (Grid, SIMD3<Int>) {
        guard let first = rows.first else { throw .invalidParameter("montage", "has no rows") }
        let grid = first.volume.grid
        for row in rows {
            try grid.requireMatches(row.volume.grid, rows[0].label, row.label)
            guard row.volume.frames == 1 else {
                throw .mismatch(row.label, "has \(row.volume.frames) frames; a montage row needs one 3-D volume")
            }
        }
        if let mask { try grid.requireMatches(mask.grid, rows[0].label, "montage mask") }
        guard (magnification ?? 1) >= 1, textScale >= 1 else {
            throw .invalidParameter("montage", "magnification and text scale must be at least 1")
        }
        guard grid.voxelSize.min() > 0 else {
            throw .mismatch(rows[0].label, "voxel size \(grid.voxelSize) is not positive")
        }
        let centre = center ?? grid.shape / 2
        guard all(centre .>= SIMD3(repeating: 0)), all(centre .< grid.shape) else {
            throw .invalidParameter("montage centre", "voxel (\(centre.x), \(centre.y), \(centre.z)) is outside the grid \(grid.shapeText)")
        }
        return (grid, centre)
    }

    private func tickLabels(_ map: ColorMap) -> [(value: Double, text: String)] {
        var ticks = [(map.upper, Self.shortNumber(map.upper) + " " + map.unit), (map.lower, Self.shortNumber(map.lower))]
        if map.lower < 0, map.upper > 0 { ticks.append((0, "0")) }
        return ticks
    }

    private static func shortNumber(_ value: Double) -> String { String(format: "%g", value) }

    /// Where each slice is drawn: `[row][orientation]` in `SliceOrientation.allCases` order.
    public func panelRectangles() throws(QSMError) -> [[PixelRectangle]] {
        let (grid, _) = try checkInputs()
        let sizes = SliceOrientation.allCases.map { panelSize($0, grid) }
        let labelWidth = rows.map { BitmapFont.width(of: $0.label, scale: textScale) }.max() ?? 0
        let rowHeight = max(sizes.map(\.height).max()!, minimumRowHeight)
        var top = padding + (title == nil ? 0 : textHeight + padding) + textHeight + padding
        var result: [[PixelRectangle]] = []
        for _ in rows {
            var left = padding + labelWidth + padding
            var rectangles: [PixelRectangle] = []
            for (orientation, size) in zip(SliceOrientation.allCases, sizes) {
                // Cells are at least as wide as their heading, so small volumes keep legible
                // headings; panels are centred in their cell and in the row.
                let cellWidth = max(size.width, BitmapFont.width(of: orientation.rawValue, scale: textScale))
                rectangles.append(PixelRectangle(x: left + (cellWidth - size.width) / 2, y: top + (rowHeight - size.height) / 2,
                                                 width: size.width, height: size.height))
                left += cellWidth + padding
            }
            result.append(rectangles)
            top += rowHeight + padding
        }
        return result
    }

    /// Where each row's colour bar is drawn (top pixel row = upper end of the window).
    public func colorBarRectangles() throws(QSMError) -> [PixelRectangle] {
        let panels = try panelRectangles()
        let rowHeight = max(panels[0].map(\.height).max()!, minimumRowHeight)
        return panels.map { row in
            let rowTop = row.map(\.y).min()!  // the tallest panel starts at the row's top
            let last = row.last!
            let cellRight = max(last.x + last.width,
                                last.x + (last.width + BitmapFont.width(of: SliceOrientation.sagittal.rawValue, scale: textScale)) / 2)
            return PixelRectangle(x: cellRight + 2 * padding, y: rowTop + textHeight / 2,
                                  width: barWidth, height: rowHeight - textHeight)
        }
    }

    // MARK: - Rendering

    /// The montage as an RGB image on a white background.
    public func render() throws(QSMError) -> PNGImage {
        let (grid, centre) = try checkInputs()
        let panels = try panelRectangles()
        let bars = try colorBarRectangles()
        let tickTextWidth = rows.flatMap { tickLabels($0.colorMap).map { BitmapFont.width(of: $0.text, scale: textScale) } }.max() ?? 0
        let titleWidth = title.map { BitmapFont.width(of: $0, scale: textScale) } ?? 0
        let width = max(bars[0].x + barWidth + padding + tickTextWidth + padding, padding + titleWidth + padding)
        let height = panels.last!.map { $0.y + $0.height }.max()! + padding
        var image = try PNGImage(width: width, height: max(height, bars.last!.y + bars.last!.height + textHeight), colorType: .rgb)

        var headingTop = padding
        if let title {
            image.drawText(title, x: padding, y: padding, scale: textScale)
            headingTop += textHeight + padding
        }
        for (orientation, rectangle) in zip(SliceOrientation.allCases, panels[0]) {
            let text = orientation.rawValue
            let x = rectangle.x + (rectangle.width - BitmapFont.width(of: text, scale: textScale)) / 2
            image.drawText(text, x: max(0, x), y: headingTop, scale: textScale)
        }
        for (rowIndex, row) in rows.enumerated() {
            let rowPanels = panels[rowIndex]
            let rowTop = rowPanels.map(\.y).min()!, rowBottom = rowPanels.map { $0.y + $0.height }.max()!
            image.drawText(row.label, x: padding, y: (rowTop + rowBottom - textHeight) / 2, scale: textScale)
            for (orientation, rectangle) in zip(SliceOrientation.allCases, rowPanels) {
                drawSlice(row, orientation, grid: grid, centre: centre, into: &image, at: rectangle)
            }
            drawColorBar(row.colorMap, into: &image, at: bars[rowIndex])
        }
        return image
    }

    private func drawSlice(_ row: Row, _ orientation: SliceOrientation, grid: Grid, centre: SIMD3<Int>,
                           into image: inout PNGImage, at rectangle: PixelRectangle) {
        let (h, v) = orientation.inPlaneAxes
        let p = pixelSize(grid)
        // Nearest neighbour: the voxel containing each pixel centre.
        func voxel(_ pixel: Int, _ axis: Int) -> Int {
            min(grid.shape[axis] - 1, Int((Double(pixel) + 0.5) * p / grid.voxelSize[axis]))
        }
        let columns = (0..<rectangle.width).map { voxel($0, h) }
        for j in 0..<rectangle.height {
            let vertical = grid.shape[v] - 1 - voxel(j, v)  // image rows go down, the axis goes up
            var position = centre
            position[v] = vertical
            for i in 0..<rectangle.width {
                position[h] = columns[i]
                let index = grid.index(position.x, position.y, position.z)
                let inside = mask?.voxels[index] ?? true
                image[rectangle.x + i, rectangle.y + j] = inside
                    ? row.colorMap.color(for: Double(row.volume.voxels[index])) : outsideColor
            }
        }
    }

    private func drawColorBar(_ map: ColorMap, into image: inout PNGImage, at bar: PixelRectangle) {
        let span = max(bar.height - 1, 1)
        for j in 0..<bar.height {
            // Top row is exactly the upper end, bottom row exactly the lower end.
            let value = map.upper - Double(j) / Double(span) * (map.upper - map.lower)
            image.fillRectangle(x: bar.x, y: bar.y + j, width: bar.width, height: 1, color: map.color(for: value))
        }
        for tick in tickLabels(map) {
            let offset = Int(((map.upper - tick.value) / (map.upper - map.lower) * Double(span)).rounded())
            // The zero tick is dropped when its label would touch an end label.
            if tick.value != map.lower, tick.value != map.upper, offset < textHeight + textScale || span - offset < textHeight + textScale { continue }
            let y = bar.y + offset
            // A short tick, then a clear gap, so the tick is not read as a minus sign.
            image.fillRectangle(x: bar.x + bar.width, y: y, width: textScale, height: max(1, textScale / 2), color: .black)
            image.drawText(tick.text, x: bar.x + bar.width + textScale * 4, y: y - textHeight / 2, scale: textScale)
        }
    }
}
