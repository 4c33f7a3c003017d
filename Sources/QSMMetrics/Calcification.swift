/// Calcification moment deviation and streaking, the two challenge 2.0 calcification metrics.
///
/// QSM Challenge 2.0 Organization Committee. MRM 2021;86:1241–1255. doi:10.1002/mrm.28754
/// (`compute_calcification_metrics_v0.m`); this follows the QSM.rs port that qsm-ci 0.6.2 uses:
///
/// gt moment = |C|·mean(t over C), C = the calcification voxels. Around C's bounding box: cube =
/// box grown by 3 voxels, rim box = cube grown by 4, outer = rim box grown by 4 (clipped to the
/// grid). The threshold is the least negative τ in {0, −0.01, …, −3.5} with no voxel of
/// outer∖cube below τ; calc = cube voxels with r < τ; moment = |calc|·mean(r over calc).
/// streak = std(residual of the OLS fit r ≈ a·t + b over rim box ∖ cube)/|mean(r over calc)|.
public struct CalcificationMetrics: Codable, Sendable, Equatable {
    /// |gt moment − reconstructed moment| (ppm·voxels).
    public var momentDeviation: Double
    /// Streaking level around the calcification (dimensionless); nil when undefined.
    public var streak: Double?

    enum CodingKeys: String, CodingKey {
        case momentDeviation = "moment_deviation", streak
    }

    /// Encodes both keys; an undefined streak is written as `null`, not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(momentDeviation, forKey: .momentDeviation)
        try c.encode(streak, forKey: .streak)
    }

    /// The metrics for the voxels where `calcification` is true; nil when there are none.
    public static func compute(recon: [Double], truth: [Double], calcification: [Bool], shape: SIMD3<Int>,
                               formula: LinearFit.Formula = .centred) -> CalcificationMetrics? {
        precondition(recon.count == truth.count && calcification.count == recon.count)
        var lower = shape, upper = SIMD3<Int>(repeating: -1)
        var truthSum = 0.0, calcCount = 0
        for i in calcification.indices where calcification[i] {
            let p = SIMD3(i % shape.x, (i / shape.x) % shape.y, i / (shape.x * shape.y))
            lower = pointwiseMin(lower, p)
            upper = pointwiseMax(upper, p)
            truthSum += truth[i]
            calcCount += 1
        }
        guard calcCount > 0 else { return nil }
        let truthMoment = Double(calcCount) * (truthSum / Double(calcCount))

        // Half-open boxes [low, high) grown and clipped as in the port.
        func grow(_ low: SIMD3<Int>, _ high: SIMD3<Int>, _ by: Int) -> (SIMD3<Int>, SIMD3<Int>) {
            (pointwiseMax(low &- by, .zero), pointwiseMin(high &+ by, shape))
        }
        let cube = (pointwiseMax(lower &- 3, .zero), pointwiseMin(upper &+ 4, shape))
        let rim = grow(cube.0, cube.1, 4)
        let outer = grow(rim.0, rim.1, 4)
        func inside(_ box: (SIMD3<Int>, SIMD3<Int>), _ p: SIMD3<Int>) -> Bool {
            all(p .>= box.0) && all(p .< box.1)
        }

        var cubeValues: [Double] = [], ringMinimum = Double.infinity
        var rimRecon: [Double] = [], rimTruth: [Double] = []
        for z in outer.0.z..<outer.1.z {
            for y in outer.0.y..<outer.1.y {
                for x in outer.0.x..<outer.1.x {
                    let p = SIMD3(x, y, z), i = x + shape.x * (y + shape.y * z)
                    if inside(cube, p) { cubeValues.append(recon[i]); continue }
                    ringMinimum = min(ringMinimum, recon[i])
                    if inside(rim, p) { rimRecon.append(recon[i]); rimTruth.append(truth[i]) }
                }
            }
        }
        var threshold = -3.5
        for step in 0...350 {
            let candidate = -Double(step) * 0.01
            if !(ringMinimum < candidate) { threshold = candidate; break }
        }
        let calcValues = cubeValues.filter { $0 < threshold }
        guard !calcValues.isEmpty else { return CalcificationMetrics(momentDeviation: abs(truthMoment), streak: nil) }
        let calcMean = calcValues.reduce(0, +) / Double(calcValues.count)
        let deviation = abs(truthMoment - Double(calcValues.count) * calcMean)
        guard rimRecon.count >= 2, abs(calcMean) > 1e-30,
              let fit = LinearFit(x: rimTruth, y: rimRecon, formula: formula) else {
            return CalcificationMetrics(momentDeviation: deviation, streak: nil)
        }
        let residuals = zip(rimRecon, rimTruth).map { $0 - (fit.slope * $1 + fit.intercept) }
        let (_, residualStd) = meanAndStd(residuals)
        return CalcificationMetrics(momentDeviation: deviation, streak: residualStd / abs(calcMean))
    }
}
