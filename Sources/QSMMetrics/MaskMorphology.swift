/// Binary dilation and erosion with a 3×3×3 cube (26-neighbourhood), as `dilatemask(·,1)` in the
/// challenge 2.0 evaluation and qsm-ci `dilate_mask_3d`. Voxels outside the grid count as outside
/// the mask, so erosion (1 − dilate(1 − m)) does not erode at the grid border.
enum MaskMorphology {
    static func dilated(_ mask: [Bool], shape: SIMD3<Int>) -> [Bool] {
        var current = mask
        let strides = [1, shape.x, shape.x * shape.y]
        for axis in 0..<3 {
            let n = shape[axis], stride = strides[axis]
            var next = current
            for i in current.indices where !current[i] {
                let position = (i / stride) % n
                if (position > 0 && current[i - stride]) || (position < n - 1 && current[i + stride]) {
                    next[i] = true
                }
            }
            current = next
        }
        return current
    }

    static func eroded(_ mask: [Bool], shape: SIMD3<Int>) -> [Bool] {
        dilated(mask.map { !$0 }, shape: shape).map { !$0 }
    }
}
