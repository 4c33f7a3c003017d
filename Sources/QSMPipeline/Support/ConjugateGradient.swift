import QSMCore

/// Conjugate gradients for a symmetric positive (semi-)definite operator on Float vectors.
///
/// Hestenes MR, Stiefel E. Methods of conjugate gradients for solving linear systems. J Res Natl
/// Bur Stand 1952;49:409–436. doi:10.6028/jres.049.044. Vectors are Float (the FFT precision);
/// inner products accumulate in Double. Starts from x = 0; stops when ‖r‖ ≤ tolerance·‖b‖.
enum ConjugateGradient {
    struct Outcome {
        var solution: [Float]
        var iterations: Int
        var relativeResidual: Double
    }

    static func solve(rhs b: [Float], tolerance: Double, maxIterations: Int,
                      operator apply: ([Float]) -> [Float]) -> Outcome {
        var x = [Float](repeating: 0, count: b.count)
        var r = b, p = b
        let bNorm = VoxelLoop.dot(b, b).squareRoot()
        guard bNorm > 0 else { return Outcome(solution: x, iterations: 0, relativeResidual: 0) }
        var rr = bNorm * bNorm
        var iterations = 0
        while iterations < maxIterations, rr.squareRoot() > tolerance * bNorm {
            let q = apply(p)
            let pq = VoxelLoop.dot(p, q)
            guard pq > 0 else { break }              // p is in the null space: nothing left to gain
            let alpha = Float(rr / pq)
            axpy(&x, alpha, p)
            axpy(&r, -alpha, q)
            let next = VoxelLoop.dot(r, r)
            let beta = Float(next / rr)
            rr = next
            xpby(&p, r, beta)
            iterations += 1
        }
        return Outcome(solution: x, iterations: iterations, relativeResidual: rr.squareRoot() / bNorm)
    }

    /// y ← y + a·x.
    static func axpy(_ y: inout [Float], _ a: Float, _ x: [Float]) {
        y.withUnsafeMutableBufferPointer { yb in
            x.withUnsafeBufferPointer { xb in
                let yp = SendablePointer(yb.baseAddress!), xp = ReadPointer(xb.baseAddress!)
                parallelFor(0..<yb.count) { r in for i in r { yp[i] += a * xp[i] } }
            }
        }
    }

    /// p ← r + b·p.
    static func xpby(_ p: inout [Float], _ r: [Float], _ b: Float) {
        p.withUnsafeMutableBufferPointer { pb in
            r.withUnsafeBufferPointer { rb in
                let pp = SendablePointer(pb.baseAddress!), rp = ReadPointer(rb.baseAddress!)
                parallelFor(0..<pb.count) { range in for i in range { pp[i] = rp[i] + b * pp[i] } }
            }
        }
    }
}
