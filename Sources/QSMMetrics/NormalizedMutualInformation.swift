/// Normalised mutual information NMI = (H(R) + H(T))/H(R, T), from 1 (independent) to 2 (identical up
/// to a one-to-one intensity mapping).
///
/// Studholme C, Hill DLG, Hawkes DJ. An overlap invariant entropy measure of 3D medical image
/// alignment. Pattern Recognition 1999;32:71–86. doi:10.1016/S0031-3203(98)00091-0.
/// Histogram as scikit-image `normalized_mutual_information(bins=100)`: numpy `histogramdd`
/// with equal-width bins spanning each variable's own min…max (last bin closed).
public enum NormalizedMutualInformation {
    /// NMI of paired values with `bins` bins per variable; nil when empty.
    public static func value(recon: [Double], truth: [Double], bins: Int = 100) -> Double? {
        precondition(recon.count == truth.count && bins > 0)
        guard !recon.isEmpty else { return nil }
        let binR = binIndices(recon, bins), binT = binIndices(truth, bins)
        var joint = [Int](repeating: 0, count: bins * bins)
        for i in recon.indices { joint[binR[i] * bins + binT[i]] += 1 }
        var marginalR = [Int](repeating: 0, count: bins), marginalT = [Int](repeating: 0, count: bins)
        for a in 0..<bins {
            for b in 0..<bins {
                let c = joint[a * bins + b]
                marginalR[a] += c; marginalT[b] += c
            }
        }
        let total = Double(recon.count)
        func entropy(_ counts: [Int]) -> Double {
            counts.reduce(0.0) { h, c in
                guard c > 0 else { return h }
                let p = Double(c) / total
                return h - p * Double.log(p)
            }
        }
        let jointEntropy = entropy(joint)
        guard jointEntropy > 0 else { return 2 }   // both constant: identical up to a mapping
        return (entropy(marginalR) + entropy(marginalT)) / jointEntropy
    }

    /// numpy `histogramdd` binning: edges = linspace(lo, hi, bins + 1); a value v goes to the last
    /// edge ≤ v, and v = hi to the last bin. A constant variable spans lo − 0.5 … hi + 0.5.
    private static func binIndices(_ values: [Double], _ bins: Int) -> [Int] {
        var lo = values.min()!, hi = values.max()!
        if lo == hi { lo -= 0.5; hi += 0.5 }
        let step = (hi - lo) / Double(bins)
        var edges = (0...bins).map { lo + Double($0) * step }
        edges[bins] = hi
        return values.map { v in
            if v == hi { return bins - 1 }
            // Direct estimate, then corrected against the edges: the largest k with edges[k] <= v.
            var k = Swift.min(Swift.max(Int((v - lo) / step), 0), bins - 1)
            while k > 0 && edges[k] > v { k -= 1 }
            while k < bins - 1 && edges[k + 1] <= v { k += 1 }
            return k
        }
    }
}
