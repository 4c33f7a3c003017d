import QSMCore
import Testing

@Suite struct GeometryTests {
    /// An oblique affine: rotation by 20° about x, voxel size 1×2×3 mm.
    static func oblique() -> Affine {
        let a = 20.0 * Double.pi / 180
        let r: [[Double]] = [[1, 0, 0], [0, Double.cos(a), -Double.sin(a)], [0, Double.sin(a), Double.cos(a)]]
        let s = [1.0, 2, 3]
        var m = [Double](repeating: 0, count: 16)
        for i in 0..<3 { for j in 0..<3 { m[i * 4 + j] = r[i][j] * s[j] } }
        m[3] = -10; m[7] = 5; m[11] = 2; m[15] = 1
        return Affine(rowMajor: m)
    }

    @Test func b0InVoxelAxesIsTheThirdRowOfTheRotation() {
        let grid = Grid(shape: SIMD3(4, 4, 4), voxelSize: SIMD3(1, 2, 3), affine: Self.oblique())
        let b = grid.b0Direction()
        let a = 20.0 * Double.pi / 180
        // Rᵀ·ẑ = third row of R = (0, sin a, cos a) (QSM.md §2.4).
        #expect(abs(b.x) < 1e-12 && abs(b.y - Double.sin(a)) < 1e-12 && abs(b.z - Double.cos(a)) < 1e-12)
        #expect(Grid(shape: SIMD3(2, 2, 2)).b0Direction() == SIMD3(0, 0, 1))
    }

    @Test func paddingAndCroppingAreInverse() throws {
        let grid = Grid(shape: SIMD3(3, 4, 5), voxelSize: SIMD3(1, 2, 3), affine: Self.oblique())
        let v = try Volume<Float>(grid: grid, voxels: (0..<60).map(Float.init))
        let padded = v.padded(to: SIMD3(8, 9, 10))
        #expect(padded.voxels.reduce(0, +) == v.voxels.reduce(0, +))
        // The original voxel (0,0,0) keeps its world position.
        let o = (SIMD3(8, 9, 10) &- grid.shape) / 2
        let world = padded.grid.affine.world(SIMD3(Double(o.x), Double(o.y), Double(o.z)))
        let original = grid.affine.world(.zero)
        #expect(((world - original) * (world - original)).sum() < 1e-20)
        let back = padded.cropped(to: grid.shape)
        #expect(back.voxels == v.voxels)
        #expect(back.grid.affine.entries.enumerated().allSatisfy { abs($0.element - grid.affine.entries[$0.offset]) < 1e-12 })
    }

    @Test func gridMismatchNamesBothSides() {
        let a = Grid(shape: SIMD3(4, 4, 4)), b = Grid(shape: SIMD3(4, 4, 5))
        #expect(throws: QSMError.mismatch("echo 2", "shape 4×4×5 differs from echo 1 (4×4×4)")) {
            try a.requireMatches(b, "echo 1", "echo 2")
        }
    }

    @Test func volumeRejectsWrongVoxelCount() {
        #expect(throws: QSMError.self) { try Volume<Float>(grid: Grid(shape: SIMD3(2, 2, 2)), voxels: [1, 2, 3]) }
    }

    @Test func stackingMakesFrames() throws {
        let g = Grid(shape: SIMD3(2, 1, 1))
        let s = try Volume.stacking([try Volume<Float>(grid: g, voxels: [1, 2]), try Volume<Float>(grid: g, voxels: [3, 4])])
        #expect(s.frames == 2 && s[1, 0, 0, 1] == 4 && s.frame(1).voxels == [3, 4])
    }
}

@Suite struct DipoleKernelTests {
    /// Along b̂ the kernel is 1/3 − 1 = −2/3; perpendicular it is 1/3; at the magic angle 0.
    @Test func valuesOnKnownDirections() {
        let shape = SIMD3(8, 8, 8)
        let d = DipoleKernel.halfSpectrum(shape: shape, voxelSize: .one, b0Direction: SIMD3(0, 0, 1), as: Double.self)
        let hx = 5
        func at(_ x: Int, _ y: Int, _ z: Int) -> Double { d[x + hx * (y + 8 * z)] }
        #expect(abs(at(0, 0, 1) + 2.0 / 3) < 1e-15)
        #expect(abs(at(1, 0, 0) - 1.0 / 3) < 1e-15)
        #expect(abs(at(0, 1, 0) - 1.0 / 3) < 1e-15)
        // k = (1, 1, 1)/8: cos²β = 1/3, D = 0.
        #expect(abs(at(1, 1, 1)) < 1e-15)
        #expect(at(0, 0, 0) == 0)
        let third = DipoleKernel.halfSpectrum(shape: shape, voxelSize: .one, b0Direction: SIMD3(0, 0, 1), dc: .oneThird, as: Double.self)
        #expect(abs(third[0] - 1.0 / 3) < 1e-15)
    }

    /// Anisotropic voxels: physical k, so k = (0, 0, 1/(N·Δz)) is still along B0.
    @Test func usesPhysicalFrequencies() {
        let shape = SIMD3(4, 4, 6)
        let d = DipoleKernel.halfSpectrum(shape: shape, voxelSize: SIMD3(1, 1, 2), b0Direction: SIMD3(0, 1, 1), as: Double.self)
        // k = (0, 1/4, 1/12): (k·b̂)²/|k|² with b̂ = (0,1,1)/√2.
        let ky = 0.25, kz = 1.0 / 12
        let expected = 1.0 / 3 - (ky + kz) * (ky + kz) / 2 / (ky * ky + kz * kz)
        #expect(abs(d[0 + 3 * (1 + 4 * 1)] - expected) < 1e-14)
    }
}

@Suite struct DeterminismTests {
    @Test func seededGeneratorRepeats() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let x = (0..<8).map { _ in a.next() }, y = (0..<8).map { _ in b.next() }, z = (0..<8).map { _ in c.next() }
        #expect(x == y && x != z)
    }

    /// Counter-based deviates: N(0,1) moments over 200k draws within 4σ of their sampling error.
    @Test func counterGaussianHasUnitVariance() {
        let g = CounterGaussian(seed: 9)
        var sum = 0.0, sumSquares = 0.0
        let n = 100_000
        for i in 0..<n {
            let (a, b) = g.pair(stream: 1, index: UInt64(i))
            sum += a + b; sumSquares += a * a + b * b
        }
        let mean = sum / Double(2 * n), variance = sumSquares / Double(2 * n) - mean * mean
        #expect(abs(mean) < 4 / Double(2 * n).squareRoot())
        #expect(abs(variance - 1) < 4 * (2.0 / Double(2 * n)).squareRoot())
        #expect(g.pair(stream: 1, index: 5) == CounterGaussian(seed: 9).pair(stream: 1, index: 5))
        #expect(g.pair(stream: 2, index: 5) != g.pair(stream: 1, index: 5))
    }

    @Test func parallelForCoversTheRangeOnce() {
        var hits = [Int](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { buffer in
            let p = SendablePointer(buffer.baseAddress!)
            parallelFor(0..<1000, chunks: 7) { r in for i in r { p[i] += 1 } }
        }
        #expect(hits.allSatisfy { $0 == 1 })
    }

    @Test func conventionsConvertPhaseAndField() {
        let c = Conventions()
        // 1 ppm at 3 T for 10 ms: 2π·42.5775e6·3·1e-6·0.01 rad.
        let phase = c.phase(fromPPM: 1, echoTime: 0.01, fieldStrength: 3)
        #expect(abs(phase - 2 * Double.pi * 42.5775 * 3 * 0.01) < 1e-12)
        #expect(abs(c.ppm(fromPhase: phase, echoTime: 0.01, fieldStrength: 3) - 1) < 1e-12)
    }
}
