/// Binary dilation and erosion with a 3×3×3 cube (26-neighbourhood), as `dilatemask(·,1)` in the
/// challenge 2.0 evaluation and qsm-ci `dilate_mask_3d`. Voxels outside the grid count as outside
/// the mask, so erosion (1 − dilate(1 − m)) does not erode at the grid border.
enum MaskMorphology {
    static func dilated(_ mask: [Bool], shape: SIMD3<Int>) -> [Bool] {
        var current = mask
        var next = mask
        let nx = shape.x, ny = shape.y, nz = shape.z
        // One pass per axis: a voxel becomes true when a neighbour along that axis is true.
        for axis in 0..<3 {
            let stride = axis == 0 ? 1 : (axis == 1 ? nx : nx * ny)
            let n = shape[axis]
            current.withUnsafeBufferPointer { c in
                next.withUnsafeMutableBufferPointer { o in
                    for z in 0..<nz { for y in 0..<ny {
                        let row = nx * (y + ny * z)
                        for x in 0..<nx {
                            let i = row + x
                            guard !c[i] else { o[i] = true; continue }
                            let position = axis == 0 ? x : (axis == 1 ? y : z)
                            o[i] = (position > 0 && c[i - stride]) || (position < n - 1 && c[i + stride])
                        }
                    } }
                }
            }
            swap(&current, &next)
        }
        return current
    }

    static func eroded(_ mask: [Bool], shape: SIMD3<Int>) -> [Bool] {
        dilated(mask.map { !$0 }, shape: shape).map { !$0 }
    }
}
