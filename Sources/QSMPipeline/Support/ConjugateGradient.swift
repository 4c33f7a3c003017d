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

    /// `apply(p, &q)` must set q ← A·p (q has b's count; its old contents are garbage).
    static func solve(rhs b: [Float], tolerance: Double, maxIterations: Int,
                      operator apply: ([Float], inout [Float]) -> Void) -> Outcome {
        solve(rhs: b, tolerance: tolerance, maxIterations: maxIterations, fusedOperator: { p, q in
            apply(p, &q)
            return VoxelLoop.dot(p, q)
        })
    }

    /// As `solve(rhs:tolerance:maxIterations:operator:)`, with `apply(p, &q)` also returning p·q
    /// (Double, fixed chunks as `VoxelLoop.dot`), so its last pass can form the product.
    static func solve(rhs b: [Float], tolerance: Double, maxIterations: Int,
                      fusedOperator apply: ([Float], inout [Float]) -> Double) -> Outcome {
        var x = [Float](repeating: 0, count: b.count)
        var r = b, p = b
        let bNorm = VoxelLoop.dot(b, b).squareRoot()
        guard bNorm > 0 else { return Outcome(solution: x, iterations: 0, relativeResidual: 0) }
        var rr = bNorm * bNorm
        var iterations = 0
        var q = x
        while iterations < maxIterations, rr.squareRoot() > tolerance * bNorm {
            let pq = apply(p, &q)
            guard pq > 0 else { break }              // p is in the null space: nothing left to gain
            let alpha = Float(rr / pq)
            let next = step(&x, &r, alpha: alpha, p: p, q: q)
            let beta = Float(next / rr)
            rr = next
            xpby(&p, r, beta)
            iterations += 1
        }
        return Outcome(solution: x, iterations: iterations, relativeResidual: rr.squareRoot() / bNorm)
    }

    /// x ← x + α·p and r ← r − α·q in one parallel pass; returns ‖r‖² (fixed chunks: the same for
    /// any thread count).
    static func step(_ x: inout [Float], _ r: inout [Float], alpha: Float, p: [Float], q: [Float]) -> Double {
        x.withUnsafeMutableBufferPointer { xb in r.withUnsafeMutableBufferPointer { rb in
            p.withUnsafeBufferPointer { pb in q.withUnsafeBufferPointer { qb in
                let xp = SendablePointer(xb.baseAddress!), rp = SendablePointer(rb.baseAddress!)
                let pp = ReadPointer(pb.baseAddress!), qp = ReadPointer(qb.baseAddress!)
                return chunkedSums(count: xb.count) { range in
                    var sum = 0.0
                    for i in range {
                        xp[i] += alpha * pp[i]
                        let value = rp[i] - alpha * qp[i]
                        rp[i] = value; sum += Double(value) * Double(value)
                    }
                    return SIMD4(sum, 0, 0, 0)
                }[0]
            } }
        } }
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
