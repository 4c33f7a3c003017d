import Testing
import QSMPipeline

/// SHARP and V-SHARP (erosions from a distance transform, fused plane/column sweeps, block-ordered
/// kernels, padded planes written on the fly) against a direct Double-precision transcription of
/// their equations (QSM.md §6.1–6.2): erosion by thresholding s_r ⊛ M, plain 3-D FFTs on
/// explicitly padded arrays.
///
/// The valid masks must agree exactly: s_r ⊛ M is 1 inside erode(M, r) and ≤ 1 − 1/|B_r| outside,
/// and the cut 1 − 0.5/|B_r| (≥ 1e-3 from both here, |B_r| ≤ 500) is far above Float FFT rounding
/// (~1e-6). The fields must agree to Float rounding: |Δ| ≤ 1e-4·max|reference|, since the Float
/// transforms carry ~1e-6 relative error and the TSVD inverse (threshold 0.05) amplifies spectral
/// errors at most 20×; a wrong sign, kernel, padding offset or assignment order gives O(1) errors.
@Suite struct SMVFusedTests {
    /// The test cases: a centred ellipsoid; one within a ball's reach of the x and z faces, so the
    /// methods pad those axes (and only those); a non-convex mask with 1 mm voxels and whole-mm
    /// radii, where many lattice points lie exactly on the ball's surface (the erosion's ties).
    /// `largeSphere`: a 20 mm sphere in a 48³ grid (1 mm, padded to 64³) with radii 6…2 mm, where
    /// V-SHARP sweeps 6 and 5 mm (5 mm: ~2600 voxels × 515 ball points > 4N) and sums 4, 3, 2 mm
    /// over the ball in image space, so both ways of high-passing a radius are compared.
    enum Case: CaseIterable { case centered, nearFace, cavities, largeSphere }

    /// Data on a 40×36×30 grid (voxels 1 × 1.25 × 1.5 mm, or 1 mm for `cavities`), or 48³ at 1 mm.
    static func data(_ kind: Case) throws -> (field: Volume<Float>, mask: Mask) {
        let shape = kind == .largeSphere ? SIMD3(48, 48, 48) : SIMD3(40, 36, 30)
        let grid = Grid(shape: shape, voxelSize: kind == .cavities || kind == .largeSphere ? .one : SIMD3(1, 1.25, 1.5))
        var generator = SeededGenerator(seed: 7)
        var field = [Float](repeating: 0, count: grid.count), mask = [Bool](repeating: false, count: grid.count)
        let center = (SIMD3<Double>(shape &- 1) / 2) * grid.voxelSize
        let radii = kind == .nearFace ? SIMD3<Double>(19, 13, 20) : SIMD3<Double>(repeating: kind == .largeSphere ? 20 : 11)
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<shape.x {
            let i = grid.index(x, y, z)
            let p = SIMD3(Double(x), Double(y), Double(z)) * grid.voxelSize
            let d = (p - center) / radii
            mask[i] = (d * d).sum() <= 1
            if kind == .cavities {
                // Two cavities and a notch cut from one side.
                let a = p - SIMD3(15, 14, 12), b = p - SIMD3(25, 21, 17)
                if (a * a).sum() <= 6.25 || (b * b).sum() <= 4 || (x > 26 && abs(y - 17) <= 1) { mask[i] = false }
            }
            // A smooth field plus white noise: both the high-pass and the deconvolution matter.
            let noise = Double(generator.next() % 2001) / 1000 - 1
            field[i] = Float(0.02 * p.x - 0.01 * p.z + 0.05 * Double.sin(p.y / 3) + 0.01 * noise)
        } } }
        return (try Volume(grid: grid, voxels: field), try Volume(grid: grid, voxels: mask))
    }

    /// The padded box of QSM.md §6: axes where the mask comes within reach + 1 voxels of a face
    /// grow by twice that to an even FFT-friendly length, the data centred.
    static func box(_ mask: Mask, reach: SIMD3<Int>) -> (shape: SIMD3<Int>, offset: SIMD3<Int>) {
        let n = mask.grid.shape
        var low = n, high = SIMD3<Int>(repeating: -1)
        for z in 0..<n.z { for y in 0..<n.y { for x in 0..<n.x where mask.voxels[mask.grid.index(x, y, z)] {
            low = pointwiseMin(low, SIMD3(x, y, z)); high = pointwiseMax(high, SIMD3(x, y, z))
        } } }
        var shape = n, offset = SIMD3<Int>.zero
        for a in 0..<3 where low[a] < reach[a] + 1 || n[a] - 1 - high[a] < reach[a] + 1 {
            var m = FFTSize.fastLength(atLeast: n[a] + 2 * (reach[a] + 1))
            while m % 2 != 0 { m = FFTSize.fastLength(atLeast: m + 1) }
            shape[a] = m
            offset[a] = (m - n[a]) / 2
        }
        return (shape, offset)
    }

    static func reach(_ radius: Double, _ voxelSize: SIMD3<Double>) -> SIMD3<Int> {
        SIMD3((0..<3).map { Int((radius / voxelSize[$0] + 1e-9).rounded(.down)) })
    }

    /// The reference: Double FFTs on the padded box of the largest radius, radii largest first.
    static func reference(_ field: Volume<Float>, _ mask: Mask, radii: [Double], threshold: Double) throws
        -> (field: [Double], valid: [Bool]) {
        let grid = field.grid, n = grid.shape
        let (shape, offset) = box(mask, reach: reach(radii[0], grid.voxelSize))
        let fft = try FFT<Double>(shape: shape)
        func padded(_ i: Int) -> Int {
            let x = i % n.x, y = (i / n.x) % n.y, z = i / (n.x * n.y)
            return (x + offset.x) + shape.x * ((y + offset.y) + shape.y * (z + offset.z))
        }
        var m = [Double](repeating: 0, count: fft.count), f = m
        for i in 0..<grid.count where mask.voxels[i] { m[padded(i)] = 1; f[padded(i)] = Double(field.voxels[i]) }
        let maskSpectrum = fft.forward(m), fieldSpectrum = fft.forward(f)
        var g = [Double](repeating: 0, count: fft.count), assigned = [Bool](repeating: false, count: fft.count)
        var largest: [Double] = []
        for radius in radii {
            let r = reach(radius, grid.voxelSize)
            var ball = [Double](repeating: 0, count: fft.count), points: [Int] = []
            for dz in -r.z...r.z { for dy in -r.y...r.y { for dx in -r.x...r.x {
                let p = SIMD3(Double(dx), Double(dy), Double(dz)) * grid.voxelSize
                guard (p * p).sum() <= radius * radius * (1 + 1e-12) else { continue }
                points.append((dx + shape.x) % shape.x + shape.x * ((dy + shape.y) % shape.y + shape.y * ((dz + shape.z) % shape.z)))
            } } }
            for p in points { ball[p] = 1 / Double(points.count) }
            let kernel = fft.forward(ball).map { $0.real }
            if largest.isEmpty { largest = kernel }
            let smoothed = fft.inverse(zip(maskSpectrum, kernel).map { $0 * Complex($1) })
            let highPassed = fft.inverse(zip(fieldSpectrum, kernel).map { $0 * Complex(1 - $1) })
            let cut = 1 - 0.5 / Double(points.count)
            for i in 0..<fft.count where smoothed[i] > cut && !assigned[i] { g[i] = highPassed[i]; assigned[i] = true }
        }
        let local = fft.inverse(zip(fft.forward(g), largest).map { s, k in
            let c = 1 - k
            return s * Complex(abs(c) >= threshold ? 1 / c : 0)
        })
        var out = [Double](repeating: 0, count: grid.count), valid = [Bool](repeating: false, count: grid.count)
        for i in 0..<grid.count where assigned[padded(i)] { out[i] = local[padded(i)]; valid[i] = true }
        return (out, valid)
    }

    static func compare(_ result: LocalField, _ reference: (field: [Double], valid: [Bool])) {
        let mismatched = zip(result.mask.voxels, reference.valid).filter { $0 != $1 }.count
        #expect(mismatched == 0, "valid masks differ in \(mismatched) voxels")
        let scale = reference.field.map(abs).max() ?? 0
        var worst = 0.0
        for i in 0..<reference.field.count { worst = max(worst, abs(Double(result.field.voxels[i]) - reference.field[i])) }
        print("SMV fused vs Double reference: max |Δ| \(worst), max |reference| \(scale), valid \(reference.valid.filter { $0 }.count)")
        #expect(scale > 0.01)
        #expect(worst <= 1e-4 * scale)
    }

    @Test(arguments: Case.allCases) func vsharpMatchesReference(_ kind: Case) throws {
        let (field, mask) = try Self.data(kind)
        var parameters = VSHARP.Parameters()
        let radii: [Double] = switch kind {
        case .cavities: [4, 3, 2]
        case .largeSphere: [6, 5, 4, 3, 2]
        default: [6, 4.5, 3]
        }
        parameters.maxRadius = radii[0]; parameters.minRadius = 2; parameters.radiusStep = radii[0] - radii[1]
        let result = try VSHARP(parameters).apply(totalField: field, mask: mask, context: StageContext())
        Self.compare(result, try Self.reference(field, mask, radii: radii, threshold: 0.05))
    }

    @Test(arguments: Case.allCases) func sharpMatchesReference(_ kind: Case) throws {
        let (field, mask) = try Self.data(kind)
        var parameters = SHARP.Parameters()
        parameters.radius = kind == .cavities || kind == .largeSphere ? 3 : 4
        parameters.threshold = 0.08
        let result = try SHARP(parameters).apply(totalField: field, mask: mask, context: StageContext())
        Self.compare(result, try Self.reference(field, mask, radii: [parameters.radius], threshold: 0.08))
    }
}
