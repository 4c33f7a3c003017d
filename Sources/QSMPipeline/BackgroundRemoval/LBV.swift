import QSMCore

/// Laplacian boundary value: solves ∇²Δb_local = ∇²Δb in the mask with Δb_local = 0 on its boundary.
///
/// Zhou D, Liu T, Spincemaille P, Wang Y. Background field removal by solving the Laplacian
/// boundary value problem. NMR Biomed 2014;27:312–319. doi:10.1002/nbm.3064. QSM.md §6.6.
/// Discretisation: 7-point Laplacian with the voxel size; the unknowns are the mask voxels whose six
/// neighbours are all in the mask, and the mask's boundary layer carries the Dirichlet value 0.
/// Solver: conjugate gradients on −∇² (symmetric positive definite with these boundary values),
/// unpreconditioned and in Double, from 0, until ‖r‖ ≤ tolerance·‖b‖ or maxIterations. QSM.jl
/// uses multigrid-preconditioned CG; without the preconditioner CG needs more iterations (about
/// the domain's diameter in voxels times a small factor), hence a larger cap. No FFTs.
public struct LBV: BackgroundRemoval {
    /// LBV's parameters.
    public struct Parameters: MethodParameters {
        /// Relative residual at which CG stops, in (0, 1). Default 1e-6 (QSM.rs `LbvParams`).
        public var tolerance = 1e-6
        /// CG iteration cap, ≥ 1. Default 2000: QSM.jl caps its multigrid-preconditioned CG at the
        /// largest dimension; plain CG needs several times more.
        public var maxIterations = 2000
        /// The literature defaults.
        public init() {}
        public static var schema: [ParameterSpec<Parameters>] {
            [.real("tolerance", \.tolerance, in: .openUnit, "CG stops at this relative residual. Default 1e-6 (QSM.rs LbvParams)."),
             .integer("maxIterations", \.maxIterations, in: 1...1_000_000,
                      "CG iteration cap. Default 2000 (no multigrid preconditioner, unlike QSM.jl).")]
        }
    }

    public static let name = "lbv"
    public static let kind = StageKind.backgroundRemoval
    public static let summary = "Laplacian boundary value problem, Dirichlet on the mask boundary (Zhou et al. 2014)"
    public var parameters: Parameters
    /// LBV with the given parameters.
    public init(_ parameters: Parameters = .init()) { self.parameters = parameters }

    /// Local field (ppm) on the mask minus its one-voxel boundary layer.
    public func apply(totalField: Volume<Float>, mask: Mask, context: StageContext) throws(QSMError) -> LocalField {
        try validateParameters()
        try context.validate()
        try InputCheck.field(totalField, mask: mask, name: "total field")
        let grid = totalField.grid
        let n = grid.shape, sx = 1, sy = n.x, sz = n.x * n.y
        let w = 1 / (grid.voxelSize * grid.voxelSize)          // 1/Δ² per axis
        // Unknowns: interior voxels (all six neighbours inside the mask, none on the array face).
        var unknown = [Int32](repeating: -1, count: grid.count)
        var voxels: [Int] = []
        for z in 1..<max(1, n.z - 1) {
            for y in 1..<max(1, n.y - 1) {
                for x in 1..<max(1, n.x - 1) {
                    let i = x + sy * y + sz * z
                    guard mask.voxels[i], mask.voxels[i - sx], mask.voxels[i + sx], mask.voxels[i - sy],
                          mask.voxels[i + sy], mask.voxels[i - sz], mask.voxels[i + sz] else { continue }
                    unknown[i] = Int32(voxels.count)
                    voxels.append(i)
                }
            }
        }
        guard !voxels.isEmpty else { throw .mismatch("mask", "has no interior voxel for LBV (it is at most one voxel thick)") }
        let f = totalField.voxels
        let diagonal = 2 * (w.x + w.y + w.z)
        // b = −∇²Δb at the unknowns (all stencil points lie in the mask).
        var rhs = [Double](repeating: 0, count: voxels.count)
        for (u, i) in voxels.enumerated() {
            let c = Double(f[i])
            rhs[u] = diagonal * c - w.x * (Double(f[i - sx]) + Double(f[i + sx]))
                - w.y * (Double(f[i - sy]) + Double(f[i + sy])) - w.z * (Double(f[i - sz]) + Double(f[i + sz]))
        }
        // A p = −∇²p with p = 0 off the unknowns.
        let strides = [sx, sy, sz], weights = [w.x, w.y, w.z]
        let apply: ([Double]) -> [Double] = { p in
            var out = [Double](repeating: 0, count: p.count)
            out.withUnsafeMutableBufferPointer { ob in
                p.withUnsafeBufferPointer { pb in
                    unknown.withUnsafeBufferPointer { ub in
                        voxels.withUnsafeBufferPointer { vb in
                            let op = SendablePointer(ob.baseAddress!), pp = ReadPointer(pb.baseAddress!)
                            let up = ReadPointer(ub.baseAddress!), vp = ReadPointer(vb.baseAddress!)
                            parallelFor(0..<ob.count) { range in
                                for u in range {
                                    let i = vp[u]
                                    var s = diagonal * pp[u]
                                    for a in 0..<3 {
                                        let lo = up[i - strides[a]], hi = up[i + strides[a]]
                                        if lo >= 0 { s -= weights[a] * pp[Int(lo)] }
                                        if hi >= 0 { s -= weights[a] * pp[Int(hi)] }
                                    }
                                    op[u] = s
                                }
                            }
                        }
                    }
                }
            }
            return out
        }
        let solution = Self.conjugateGradient(rhs: rhs, tolerance: parameters.tolerance,
                                              maxIterations: parameters.maxIterations, apply: apply)
        var local = [Float](repeating: 0, count: grid.count)
        var valid = [Bool](repeating: false, count: grid.count)
        for (u, i) in voxels.enumerated() { local[i] = Float(solution[u]); valid[i] = true }
        return LocalField(field: try Volume(grid: grid, voxels: local), mask: try Volume(grid: grid, voxels: valid))
    }

    /// Plain CG in Double (Hestenes & Stiefel 1952, doi:10.6028/jres.049.044).
    static func conjugateGradient(rhs b: [Double], tolerance: Double, maxIterations: Int,
                                  apply: ([Double]) -> [Double]) -> [Double] {
        var x = [Double](repeating: 0, count: b.count)
        var r = b, p = b
        let bNorm = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var rr = bNorm * bNorm
        var k = 0
        while k < maxIterations, rr.squareRoot() > tolerance * bNorm {
            let q = apply(p)
            var pq = 0.0
            for i in 0..<p.count { pq += p[i] * q[i] }
            guard pq > 0 else { break }
            let alpha = rr / pq
            var next = 0.0
            for i in 0..<x.count {
                x[i] += alpha * p[i]
                r[i] -= alpha * q[i]
                next += r[i] * r[i]
            }
            let beta = next / rr
            rr = next
            for i in 0..<p.count { p[i] = r[i] + beta * p[i] }
            k += 1
        }
        return x
    }
}
