/// Deep-grey-matter linearity: the OLS slope of mean χ (reconstruction) against mean χ (truth)
/// over the deep grey matter nuclei, reported with the deviation |1 − slope|.
///
/// QSM Challenge 2.0 Organization Committee. MRM 2021;86:1241–1255. doi:10.1002/mrm.28754
/// ("DeviationFromLinearSlope"); ported as QSM.rs / qsm-ci `dgm_linearity`.
public enum DGMLinearity {
    /// The slope over `labels` (default: 1–6) present in `selection`; nil with fewer than two labels.
    ///
    /// `selection` restricts which voxels count (the mask for qsmbench's own conventions, all voxels
    /// for qsm-ci, which averages the label over the whole grid after zeroing outside the mask).
    public static func slope(recon: [Double], truth: [Double], labels: [Int], selection: [Bool],
                             deepGreyMatter: [Int] = [1, 2, 3, 4, 5, 6],
                             formula: LinearFit.Formula = .centred) -> Double? {
        var truthMeans: [Double] = [], reconMeans: [Double] = []
        for label in deepGreyMatter {
            var sumR = 0.0, sumT = 0.0, count = 0
            for i in labels.indices where labels[i] == label && selection[i] {
                sumR += recon[i]; sumT += truth[i]; count += 1
            }
            guard count > 0 else { continue }
            reconMeans.append(sumR / Double(count))
            truthMeans.append(sumT / Double(count))
        }
        guard truthMeans.count >= 2 else { return nil }
        return LinearFit(x: truthMeans, y: reconMeans, formula: formula)?.slope
    }
}
