import Testing
import QSMPhantom
import QSMTestSupport

/// Relative L2 error ‖a − b‖/‖b‖ and max |a − b| over the voxels where `select` holds.
func errors(_ simulated: Volume<Float>, expected: (SIMD3<Double>) -> Double,
            where select: (SIMD3<Double>) -> Bool) -> (relative: Double, maxAbsolute: Double, count: Int) {
    let grid = simulated.grid
    let centre = SIMD3<Double>(Double(grid.shape.x - 1), Double(grid.shape.y - 1), Double(grid.shape.z - 1)) / 2
    var difference = 0.0, reference = 0.0, maxAbsolute = 0.0, count = 0
    for z in 0..<grid.shape.z { for y in 0..<grid.shape.y { for x in 0..<grid.shape.x {
        let p = (SIMD3<Double>(Double(x), Double(y), Double(z)) - centre) * grid.voxelSize
        guard select(p) else { continue }
        let e = expected(p), d = Double(simulated[x, y, z]) - e
        difference += d * d; reference += e * e; maxAbsolute = max(maxAbsolute, abs(d)); count += 1
    } } }
    return ((difference / max(reference, 1e-300)).squareRoot(), maxAbsolute, count)
}

@Suite("Forward model against closed forms")
struct ForwardModelClosedFormTests {
    // 64³ at 1 mm with R = 8 mm: the shell 12–24 mm lies well inside the box; 2× padding makes the
    // FFT box cubic (128³), where the periodic images' field at the centre cancels by symmetry.
    static let grid = Grid(shape: SIMD3(repeating: 64), voxelSize: SIMD3(repeating: 1))

    @Test(arguments: Precision.allCases)
    func sphereShellMatchesClosedForm(_ precision: Precision) throws {
        var settings = AnalyticPhantomSettings()
        settings.radius = 8
        let phantom = try Phantom.sphere(grid: Self.grid, settings: settings)
        let b0 = SIMD3<Double>(0, 0, 1)
        let model = ForwardModel(b0Direction: b0, precision: precision == .single ? .single : .double)
        let field = try model.field(of: phantom.chi)
        let shell = errors(field, expected: { AnalyticFields.sphere(at: $0, radius: 8, deltaChi: 0.1, b0: b0) },
                           where: { p in let r = (p * p).sum().squareRoot(); return r >= 12 && r <= 24 })
        // The acceptance bound: 1 % relative L2 error in the shell 1.5R–3R.
        #expect(shell.count > 20_000)
        #expect(shell.relative < 0.01, "relative error \(shell.relative)")
        // D(0) = 0 in a cubic box: the interior field is 0 (the closed form), up to the
        // partial-volume surface error; bound at 1 % of Δχ/3, the largest field of the sphere.
        let interior = errors(field, expected: { _ in 0 }, where: { p in (p * p).sum() < 25 })
        #expect(interior.maxAbsolute < 0.01 * 0.1 / 3, "interior \(interior.maxAbsolute)")
    }

    @Test func sphereAtObliqueB0MatchesClosedForm() throws {
        var settings = AnalyticPhantomSettings()
        settings.radius = 8
        settings.chi = -0.25
        let phantom = try Phantom.sphere(grid: Self.grid, settings: settings)
        let b0 = Orientation.b0Direction(headRotationDegrees: SIMD3(25, -40, 10))
        let field = try ForwardModel(b0Direction: b0).field(of: phantom.chi)
        let shell = errors(field, expected: { AnalyticFields.sphere(at: $0, radius: 8, deltaChi: -0.25, b0: b0) },
                           where: { p in let r = (p * p).sum().squareRoot(); return r >= 12 && r <= 24 })
        // Oblique B0 is harder for the grid: the sampled sphere is not band-limited, and with b̂ off
        // the axes the aliased spectrum meets a kernel that is not even per axis. Measured with this
        // code (double precision, 5³ sub-samples, n = 8R): b̂ ∥ (1, 0, 1) gives 1.78 % at R = 8,
        // 1.23 % at R = 12, 0.94 % at R = 16 voxels (∝ 1/R, a surface effect), b̂ ∥ z 0.18 %. The bound
        // 2.5 % at R = 8 keeps a margin over 1.9 % for this b̂ and fails on any convention error
        // (a wrong b̂ or D gives tens of per cent).
        #expect(shell.relative < 0.025, "relative error \(shell.relative)")
    }

    /// D(0) = 1/3 adds exactly mean(χ over the padded box)/3 everywhere (QSM.md §2.2).
    @Test func oneThirdConventionAddsMeanOverThree() throws {
        var settings = AnalyticPhantomSettings()
        settings.radius = 8
        let phantom = try Phantom.sphere(grid: Self.grid, settings: settings)
        var model = ForwardModel(precision: .double)
        let zero = try model.field(of: phantom.chi)
        model.dipoleDC = .oneThird
        let third = try model.field(of: phantom.chi)
        let padded = model.paddedShape(for: Self.grid.shape)
        let total = phantom.chi.voxels.reduce(0.0) { $0 + Double($1) }
        let expected = total / Double(padded.x * padded.y * padded.z) / 3
        let differences = zip(third.voxels, zero.voxels).map { Double($0) - Double($1) }
        // Float storage of fields of size ~0.03 ppm: rounding 0.03·6e-8 ≈ 2e-9.
        #expect(differences.allSatisfy { abs($0 - expected) < 1e-8 }, "expected \(expected)")
        #expect(expected > 1e-5)
    }

    /// Infinite cylinder along z, periodic along z, B0 at θ. With a square x–y FFT box the periodic
    /// images reproduce the infinite-space field except for the k = 0 term: the continuum takes the
    /// angular mean of D in the plane, 1/3 − sin²θ/2, where the DFT takes D(0); the field is shifted by
    /// (D(0) − (1/3 − sin²θ/2))·mean(χ over the padded box), which we add to the closed form.
    @Test(arguments: [0.0, 54.7356103172453, 90.0])
    func cylinderMatchesClosedForm(_ angle: Double) throws {
        let grid = Grid(shape: SIMD3(64, 64, 16), voxelSize: SIMD3(repeating: 1))
        var settings = AnalyticPhantomSettings()
        settings.radius = 8
        settings.angleDegrees = angle
        let phantom = try Phantom.cylinder(grid: grid, settings: settings)
        let model = ForwardModel(b0Direction: phantom.b0Direction, paddingFactor: phantom.paddingFactor, precision: .double)
        #expect(model.paddedShape(for: grid.shape) == SIMD3(128, 128, 16))
        let field = try model.field(of: phantom.chi)
        let b0 = phantom.b0Direction
        let theta = angle * .pi / 180
        let meanChi = phantom.chi.voxels.reduce(0.0) { $0 + Double($1) } / Double(128 * 128 * 16)
        let sine = Double.sin(theta)
        let planeMean: Double = 1.0 / 3 - 0.5 * sine * sine
        let offset: Double = -planeMean * meanChi
        let axis = SIMD3<Double>(0, 0, 1)
        let expected: @Sendable (SIMD3<Double>) -> Double = { p in
            AnalyticFields.cylinder(at: p, radius: 8, deltaChi: 0.1, axis: axis, b0: b0) + offset }
        let shell = errors(field, expected: expected, where: { p in
            let rho = (p.x * p.x + p.y * p.y).squareRoot(); return rho >= 12 && rho <= 24 })
        let interior = errors(field, expected: expected, where: { p in p.x * p.x + p.y * p.y < 25 })
        // Bound: 1 % of the largest field of the cylinder (Δχ/3 inside when parallel); relative L2
        // is meaningless at 0° (outside field 0) and inside at the magic angle (0).
        #expect(shell.maxAbsolute < 0.01 * 0.1 / 3, "shell max error \(shell.maxAbsolute) at \(angle)°")
        #expect(interior.maxAbsolute < 0.01 * 0.1 / 3, "interior max error \(interior.maxAbsolute) at \(angle)°")
        if angle > 10 { #expect(shell.relative < 0.01, "shell relative error \(shell.relative) at \(angle)°") }
    }
}

@Suite("Forward model properties")
struct ForwardModelPropertyTests {
    static let grid = Grid(shape: SIMD3(32, 32, 32), voxelSize: SIMD3(1, 1, 1.5))

    /// A lumpy, asymmetric object: three off-centre ellipsoids of different χ.
    static func lumpy(_ grid: Grid, seed: UInt64) -> Volume<Float> {
        var generator = SeededGenerator(seed: seed)
        var v = Volume<Float>(zeros: grid)
        for _ in 0..<3 {
            let c = SIMD3<Double>(Double.random(in: 8...24, using: &generator), Double.random(in: 8...24, using: &generator),
                                  Double.random(in: 8...24, using: &generator))
            let r = SIMD3<Double>(Double.random(in: 2...6, using: &generator), Double.random(in: 2...6, using: &generator),
                                  Double.random(in: 2...6, using: &generator))
            let chi = Float.random(in: -0.2...0.3, using: &generator)
            for z in 0..<32 { for y in 0..<32 { for x in 0..<32 {
                let d = (SIMD3<Double>(Double(x), Double(y), Double(z)) - c) / r
                if (d * d).sum() < 1 { v[x, y, z] += chi }
            } } }
        }
        return v
    }

    @Test func fieldIsLinearInChi() throws {
        let a = Self.lumpy(Self.grid, seed: 1), b = Self.lumpy(Self.grid, seed: 2)
        let model = ForwardModel(b0Direction: SIMD3(0.2, -0.1, 1))
        let combined = try Volume(grid: Self.grid, voxels: zip(a.voxels, b.voxels).map { 2.5 * $0 - 0.75 * $1 })
        let fields = try model.fields(of: [a, b, combined])
        let scale = fields[2].voxels.map { abs($0) }.max()!
        var worst: Float = 0
        for i in 0..<Self.grid.count {
            worst = max(worst, abs(fields[2].voxels[i] - (2.5 * fields[0].voxels[i] - 0.75 * fields[1].voxels[i])))
        }
        // Single-precision FFTs: round-off ~ log2(N)·ε·max ≈ 1e-6 relative; 1e-5 leaves headroom.
        #expect(worst < 1e-5 * scale, "worst \(worst) vs scale \(scale)")
        #expect(scale > 0.01)
    }

    /// Rotating the object by 90° about x while rotating B0 with it gives the rotated field.
    /// (x, y, z) → (x, n−1−z, y) is exact on a cubic grid with isotropic voxels.
    @Test func rotatingB0EqualsRotatingTheObject() throws {
        let grid = Grid(shape: SIMD3(repeating: 32), voxelSize: SIMD3(repeating: 1))
        let chi = Self.lumpy(grid, seed: 7)
        let b0 = SIMD3<Double>(0.3, 0.5, 0.8)
        var rotated = Volume<Float>(zeros: grid)
        for z in 0..<32 { for y in 0..<32 { for x in 0..<32 { rotated[x, 31 - z, y] = chi[x, y, z] } } }
        // A vector (vx, vy, vz) maps to (vx, −vz, vy) under the same rotation.
        let rotatedB0 = SIMD3<Double>(b0.x, -b0.z, b0.y)
        let original = try ForwardModel(b0Direction: b0, precision: .double).field(of: chi)
        let turned = try ForwardModel(b0Direction: rotatedB0, precision: .double).field(of: rotated)
        var worst: Float = 0, scale: Float = 0
        for z in 0..<32 { for y in 0..<32 { for x in 0..<32 {
            worst = max(worst, abs(turned[x, 31 - z, y] - original[x, y, z])); scale = max(scale, abs(original[x, y, z]))
        } } }
        // Double FFTs then Float storage: 1e-6 relative covers the storage rounding.
        #expect(worst < 1e-6 * scale, "worst \(worst), scale \(scale)")
    }

    /// The B0 direction read back from the affine built for it is the same vector.
    @Test func affineEncodesB0Direction() {
        for b in [SIMD3<Double>(0, 0, 1), SIMD3(0.2, 0, 1), SIMD3(-0.3, 0.4, 0.5), SIMD3(0, 0, -1)] {
            let affine = Orientation.affine(shape: SIMD3(10, 12, 14), voxelSize: SIMD3(1, 1.5, 2), b0Direction: b)
            let grid = Grid(shape: SIMD3(10, 12, 14), voxelSize: SIMD3(1, 1.5, 2), affine: affine)
            let back = grid.b0Direction()
            let unit = b / (b * b).sum().squareRoot()
            #expect(abs(abs((back * unit).sum()) - 1) < 1e-12, "\(b) → \(back)")
            #expect(abs(affine.columnNorms.y - 1.5) < 1e-12)
        }
    }

    /// A head rotated by R sees B0 along Rᵀẑ: +90° about x puts B0 along the head's +y, and a turn
    /// about z (the B0 axis) changes nothing.
    @Test func headRotationGivesTransposedB0() {
        let pitched = Orientation.b0Direction(headRotationDegrees: SIMD3(90, 0, 0))
        #expect(pitched == SIMD3(0, 1, 0))
        let rolled = Orientation.b0Direction(headRotationDegrees: SIMD3(0, 30, 0))
        #expect(abs(rolled.x + 0.5) < 1e-12 && rolled.y == 0 && abs(rolled.z - 0.75.squareRoot()) < 1e-12)
        #expect(Orientation.b0Direction(headRotationDegrees: SIMD3(0, 0, 37)) == SIMD3(0, 0, 1))
        let angled = Orientation.b0Direction(angleDegrees: 54.7356103172453)
        #expect(abs(angled.z * angled.z - 1.0 / 3) < 1e-12)
    }

    @Test func invalidSettingsThrow() throws {
        let chi = Volume<Float>(zeros: Self.grid)
        #expect(throws: QSMError.self) { try ForwardModel(b0Direction: .zero).field(of: chi) }
        #expect(throws: QSMError.self) { try ForwardModel(paddingFactor: SIMD3(0.5, 2, 2)).field(of: chi) }
        var bad = chi
        bad.voxels[5] = .nan
        #expect(throws: QSMError.self) { try ForwardModel().field(of: bad) }
    }
}
