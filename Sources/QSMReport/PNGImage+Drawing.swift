extension PNGImage {
    /// Fills the rectangle with top-left corner (x, y), clipped to the image.
    public mutating func fillRectangle(x: Int, y: Int, width w: Int, height h: Int, color: RGBColor) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for row in y0..<y1 {
            for column in x0..<x1 { self[column, row] = color }
        }
    }

    /// Draws `text` with its top-left corner at (x, y) in the bitmap font magnified by `scale`.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, color: RGBColor = .black) {
        var left = x
        for character in text {
            let rows = BitmapFont.rows(for: character)
            for (r, bits) in rows.enumerated() {
                for c in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(c)) != 0 {
                    fillRectangle(x: left + c * scale, y: y + r * scale, width: scale, height: scale, color: color)
                }
            }
            left += (BitmapFont.glyphWidth + 1) * scale
        }
    }
}
