import QSMCore

/// The spherical mean value (SMV) kernel: a normalised discrete ball of radius r (mm), in k-space.
///
/// s_r(x) = 1/|B_r| for |x| ≤ r on the voxel lattice (physical units), else 0, so Σ s_r = 1 and
/// s_r ⊛ h = h for harmonic h wherever the ball lies inside the region (QSM.md §6). Built in image
/// space and transformed (1 FFT), as QSM.jl `smv_kernel` and QSM.rs `kernels/smv.rs` do, so the
/// discrete mean-value property holds exactly for discretely harmonic fields up to rounding.
struct SMVKernel: Sendable {
    /// Ŝ_r on the half spectrum (real: the ball is symmetric).
    let spectrum: [Float]
    /// Number of voxels in the ball, |B_r|.
    let voxelCount: Int
    /// Ball radius in voxels along each axis, rounded up.
    let reach: SIMD3<Int>

    /// The lattice points of the ball of radius r (mm) in a periodic box, grouped by x–y plane, so
    /// a fused transform can write s_r plane by plane without a box-sized image of the ball.
    struct Ball: Sendable {
        /// |B_r|.
        let count: Int
        /// Box indices of the ball's points (offsets wrapped periodically), ascending.
        let offsets: [Int]
        /// `offsets[planeStart[z]..<planeStart[z + 1]]` lie in plane z.
        let planeStart: [Int]
        /// Points per x–y plane of the box.
        let planeSize: Int

        /// The ball of `radius` mm in a box of `shape`; throws (naming `parameter`) if the ball is
        /// one voxel or does not fit in the box.
        init(radius: Double, voxelSize: SIMD3<Double>, shape: SIMD3<Int>, parameter: String) throws(QSMError) {
            let reach = SMVKernel.reach(radius: radius, voxelSize: voxelSize)
            guard all(2 &* reach &+ 1 .<= shape) else {
                throw .invalidParameter(parameter, "radius \(radius) mm does not fit in the \(shape.x)×\(shape.y)×\(shape.z) grid")
            }
            var offsets: [Int] = []
            for dz in -reach.z...reach.z {
                for dy in -reach.y...reach.y {
                    for dx in -reach.x...reach.x {
                        let p = SIMD3(Double(dx), Double(dy), Double(dz)) * voxelSize
                        guard (p * p).sum() <= radius * radius * (1 + 1e-12) else { continue }
                        let x = (dx + shape.x) % shape.x, y = (dy + shape.y) % shape.y, z = (dz + shape.z) % shape.z
                        offsets.append(x + shape.x * (y + shape.y * z))
                    }
                }
            }
            guard offsets.count > 1 else {
                throw .invalidParameter(parameter, "radius \(radius) mm is smaller than one voxel (\(voxelSize.min()) mm)")
            }
            offsets.sort()
            planeSize = shape.x * shape.y
            var start = [Int](repeating: 0, count: shape.z + 1)
            for o in offsets { start[o / planeSize + 1] += 1 }
            for z in 0..<shape.z { start[z + 1] += start[z] }
            count = offsets.count
            self.offsets = offsets
            planeStart = start
        }

        /// The value of s_r on the ball, 1/|B_r|.
        var value: Float { 1 / Float(count) }

        /// Writes plane z of s_r (nx·ny, x fastest) into `plane`.
        func load(_ z: Int, _ plane: UnsafeMutableBufferPointer<Float>) {
            let p = plane.baseAddress!, base = z * planeSize, v = value
            p.update(repeating: 0, count: planeSize)
            for k in planeStart[z]..<planeStart[z + 1] { p[offsets[k] - base] = v }
        }

        /// The cut on (s_r ⊛ M) that separates "whole ball inside" from "one voxel outside" (see `erode`).
        var erosionCut: Float { 1 - 0.5 / Float(count) }
    }

    /// The ball of `radius` mm (allocating its own buffers).
    init(radius: Double, voxelSize: SIMD3<Double>, spectral: Spectral, parameter: String) throws(QSMError) {
        let ball = try Ball(radius: radius, voxelSize: voxelSize, shape: spectral.shape, parameter: parameter)
        var image = [Float](repeating: 0, count: spectral.count)
        for o in ball.offsets { image[o] = ball.value }
        spectrum = spectral.forward(image).map { $0.real }
        voxelCount = ball.count
        reach = Self.reach(radius: radius, voxelSize: voxelSize)
    }

    /// Ball reach in voxels per axis for `radius` mm.
    static func reach(radius: Double, voxelSize: SIMD3<Double>) -> SIMD3<Int> {
        SIMD3((0..<3).map { Int((radius / voxelSize[$0] + 1e-9).rounded(.down)) })
    }

    /// 1 − Ŝ_r: the symbol of δ − s_r, the SHARP high-pass.
    var highPass: [Float] {
        spectrum.withUnsafeBufferPointer { b in
            let p = ReadPointer(b.baseAddress!)
            return VoxelLoop.generate(count: b.count) { 1 - p[$0] }
        }
    }

    /// The cut on (s_r ⊛ M) that separates "whole ball inside" from "one voxel outside".
    var erosionCut: Float { 1 - 0.5 / Float(voxelCount) }

    /// The mask eroded by the ball: voxels whose whole ball lies in the mask (1 inverse FFT).
    ///
    /// (s_r ⊛ M)(x) is 1 inside and at most 1 − 1/|B_r| as soon as one ball voxel is outside, so the
    /// cut 1 − 0.5/|B_r| separates the two with a margin far above Float FFT rounding (~1e-6).
    func erode(maskSpectrum: [Complex<Float>], spectral: Spectral) -> [Bool] {
        let smoothed = spectral.inverse(maskSpectrum, times: spectrum)
        let cut = 1 - 0.5 / Float(voxelCount)
        return smoothed.map { $0 > cut }
    }
}

/// Eigenvalues of the 7-point discrete Laplacian with periodic boundaries, on the half spectrum.
///
/// λ(k) = Σ_axes 2(cos(2π m_axis/N_axis) − 1)/Δ_axis² ≤ 0, λ(0) = 0 (QSM.md §3.1, §7).
enum LaplacianEigenvalues {
    /// λ on the half spectrum of `shape` with voxel size `voxelSize` (mm), x fastest.
    static func halfSpectrum(shape: SIMD3<Int>, voxelSize: SIMD3<Double>) -> [Float] {
        func axis(_ n: Int, _ count: Int, _ d: Double) -> [Double] {
            (0..<count).map { m -> Double in
                let c = Double.cos(2 * Double.pi * Double(m) / Double(n))
                return 2 * (c - 1) / (d * d)
            }
        }
        let hx = shape.x / 2 + 1
        let lx = axis(shape.x, hx, voxelSize.x), ly = axis(shape.y, shape.y, voxelSize.y)
        let lz = axis(shape.z, shape.z, voxelSize.z)
        var out = [Float](repeating: 0, count: hx * shape.y * shape.z)
        var i = 0
        for z in 0..<shape.z { for y in 0..<shape.y { for x in 0..<hx { out[i] = Float(lx[x] + ly[y] + lz[z]); i += 1 } } }
        return out
    }
}
