import QSMCore

/// Scores a reconstructed χ map against the truth under one `MetricConvention`.
///
/// Inputs are checked (grids, affines, an empty mask, non-finite values inside the mask), both maps
/// are converted to Double and set to 0 outside the mask, and every metric of the convention is
/// computed in Double.
public struct Scorer: Sendable {
    /// The metric definitions to follow.
    public var convention: MetricConvention
    /// Tool version recorded in every `Scores`.
    public var toolVersion: String

    /// How the inputs are named in error messages (file paths in the CLI).
    public struct InputNames: Sendable {
        /// The reconstruction's name.
        public var recon: String
        /// The truth's name.
        public var truth: String
        /// The mask's name.
        public var mask: String
        /// The segmentation's name.
        public var segmentation: String

        /// Names for error messages; the defaults are the roles.
        public init(recon: String = "recon", truth: String = "truth", mask: String = "mask",
                    segmentation: String = "segmentation") {
            self.recon = recon
            self.truth = truth
            self.mask = mask
            self.segmentation = segmentation
        }
    }

    /// A scorer for `convention`, recording `toolVersion`.
    public init(convention: MetricConvention = .default, toolVersion: String) {
        self.convention = convention
        self.toolVersion = toolVersion
    }

    /// All metrics of the convention; throws `QSMError` naming the input (`names`) when the inputs
    /// do not fit together (shape, voxel size, affine, frames), the mask is empty, or a map holds
    /// non-finite values inside the mask.
    ///
    /// Non-finite reconstruction voxels inside the mask are an error, except under `.qsmCI`, which
    /// scores them as 0 (and counts them as uncovered) like qsm-ci `score_arrays`.
    public func score(
        recon: Volume<Float>, truth: Volume<Float>, mask: Mask, segmentation: Volume<Int>? = nil,
        names: InputNames = InputNames()
    ) throws(QSMError) -> Scores {
        try scoreSpecialized(recon: recon, truth: truth, mask: mask, segmentation: segmentation, names: names)
    }

    /// The same for Double maps.
    public func score(
        recon: Volume<Double>, truth: Volume<Double>, mask: Mask, segmentation: Volume<Int>? = nil,
        names: InputNames = InputNames()
    ) throws(QSMError) -> Scores {
        try scoreSpecialized(recon: recon, truth: truth, mask: mask, segmentation: segmentation, names: names)
    }

    // Non-generic entry points above, so the per-voxel conversion is specialised for each type
    // (a generic public function would run unspecialised from other modules).
    @inline(__always)
    private func scoreSpecialized<T: BinaryFloatingPoint & Sendable>(
        recon: Volume<T>, truth: Volume<T>, mask: Mask, segmentation: Volume<Int>?, names: InputNames
    ) throws(QSMError) -> Scores {
        try Self.requireSameGeometry(truth.grid, recon.grid, names.truth, names.recon)
        try Self.requireSameGeometry(truth.grid, mask.grid, names.truth, names.mask)
        if let segmentation { try Self.requireSameGeometry(truth.grid, segmentation.grid, names.truth, names.segmentation) }
        guard recon.frames == 1 else { throw .mismatch(names.recon, "has \(recon.frames) frames; a 3-D map is needed") }
        guard truth.frames == 1 else { throw .mismatch(names.truth, "has \(truth.frames) frames; a 3-D map is needed") }
        guard mask.frames == 1, segmentation?.frames ?? 1 == 1 else {
            throw .mismatch(mask.frames == 1 ? names.segmentation : names.mask, "has several frames; a 3-D volume is needed")
        }
        let grid = truth.grid
        let inside = mask.voxels
        let maskVoxels = inside.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard maskVoxels > 0 else { throw .invalidFile(names.mask, "no voxel is inside the mask") }

        var r = [Double](repeating: 0, count: grid.count), t = r
        var covered = 0
        for i in 0..<grid.count where inside[i] {
            let tv = Double(truth.voxels[i]), rv = Double(recon.voxels[i])
            guard tv.isFinite else { throw .invalidFile(names.truth, "non-finite value \(tv) at \(Self.position(i, grid)) inside the mask") }
            if rv.isFinite {
                r[i] = rv
                if rv != 0 { covered += 1 }
            } else if convention != .qsmCI {
                throw .invalidFile(names.recon, "non-finite value \(rv) at \(Self.position(i, grid)) inside the mask")
            }
            t[i] = tv
        }
        return compute(Field(shape: grid.shape, values: r), Field(shape: grid.shape, values: t), inside,
                       maskVoxels: maskVoxels, covered: covered, labels: segmentation?.voxels)
    }

    private func compute(_ recon: Field, _ truth: Field, _ mask: [Bool], maskVoxels: Int, covered: Int,
                         labels: [Int]?) -> Scores {
        let formula: LinearFit.Formula = convention == .qsmCI ? .rawSums : .centred
        let (r, t) = Self.gather(recon.values, truth.values, mask)
        let demeaned = NRMSE.demeaned(recon: r, truth: t)
        let detrended = NRMSE.detrended(recon: r, truth: t, .inverseFit, formula: formula)
        var variants: [String: Double?] = [:]
        for variant in NRMSE.Detrending.allCases {
            variants[variant.rawValue] = NRMSE.detrended(recon: r, truth: t, variant, formula: formula)
        }
        let rmse = RMSE.percent(recon: r, truth: t)

        let hfen: HFEN, ssim: SSIM?, xsim: SSIM
        var rescaling: IntensityRescaling?
        switch convention {
        case .default:
            hfen = HFEN(kernel: .qsmCI, support: .mask)
            xsim = XSIM.qsmCI
            ssim = Self.dataRange(truth.values).map { SSIM.scikitImage(dataRange: $0, averaging: .mask) }
        case .qsmCI:
            hfen = HFEN(kernel: .qsmCI, support: .mask)
            xsim = XSIM.qsmCI
            ssim = Self.dataRange(truth.values).map { SSIM.scikitImage(dataRange: $0) }
        case .challenge2016, .challenge2019:
            hfen = HFEN(kernel: .challenge2016, support: .grid)
            xsim = XSIM.fansi2019
            ssim = .index3d
            rescaling = .jointRange
        }
        var ssimValue: Double?
        if let ssim {
            if let rescaling {
                if let (a, b) = rescaling.apply(recon: recon.values, truth: truth.values) {
                    ssimValue = ssim.mean(Field(shape: recon.shape, values: a), Field(shape: truth.shape, values: b), mask: mask)
                }
            } else {
                ssimValue = ssim.mean(recon, truth, mask: mask)
            }
        }

        var scores = Scores(
            convention: convention, version: toolVersion, rmse: rmse,
            nrmse: convention == .challenge2016 ? rmse : demeaned,
            nrmseDemeaned: demeaned, nrmseDetrended: detrended, nrmseDetrendedVariants: variants,
            hfen: hfen.percent(recon, truth, mask: mask), ssim: ssimValue,
            xsim: xsim.mean(recon, truth, mask: mask),
            cc: PearsonCorrelation.coefficient(recon: r, truth: t, formula: formula),
            nmi: NormalizedMutualInformation.value(recon: r, truth: t),
            coverage: Double(covered) / Double(maskVoxels), maskVoxels: maskVoxels,
            regions: ["whole_brain": .init(voxels: maskVoxels, nrmseDemeaned: demeaned, nrmseDetrended: detrended)],
            labels: [], dgmSlope: nil, dgmLinearity: nil, calcification: nil,
            definitions: convention.definitions)
        if let labels { addRegionalScores(&scores, recon, truth, mask, labels, formula) }
        return scores.sanitized()
    }

    private func addRegionalScores(_ scores: inout Scores, _ recon: Field, _ truth: Field, _ mask: [Bool],
                                   _ labels: [Int], _ formula: LinearFit.Formula) {
        let shape = recon.shape
        let erodeRegions = convention == .challenge2016 || convention == .challenge2019
        func region(_ members: Set<Int>) -> [Bool] {
            let base = zip(mask, labels).map { $0 && members.contains($1) }
            return erodeRegions ? MaskMorphology.eroded(base, shape: shape) : base
        }
        var blood = MaskMorphology.dilated(zip(mask, labels).map { $0 && $1 == Segmentation.bloodLabel }, shape: shape)
        if convention == .default { blood = zip(blood, mask).map { $0 && $1 } }
        let regions: [(String, [Bool])] = [
            ("tissue", region(Segmentation.tissueLabels)),
            ("blood", blood),
            ("dgm", region(Segmentation.deepGreyMatterLabels)),
        ]
        for (name, members) in regions {
            // An empty region (e.g. small nuclei removed by erosion) is reported with 0 voxels.
            let (r, t) = Self.gather(recon.values, truth.values, members)
            scores.regions[name] = .init(voxels: r.count, nrmseDemeaned: NRMSE.demeaned(recon: r, truth: t),
                                         nrmseDetrended: NRMSE.detrended(recon: r, truth: t, .inverseFit, formula: formula))
        }
        scores.labels = LabelStatistics.compute(recon: recon.values, truth: truth.values, labels: labels, mask: mask,
                                                minimumVoxels: convention == .qsmCI ? 10 : 1)
        // qsm-ci averages labels over the whole grid (values are already 0 outside the mask).
        let wholeGrid = convention == .qsmCI
        let selection = wholeGrid ? [Bool](repeating: true, count: mask.count) : mask
        scores.dgmSlope = DGMLinearity.slope(recon: recon.values, truth: truth.values, labels: labels,
                                             selection: selection, formula: formula)
        scores.dgmLinearity = scores.dgmSlope.map { abs(1 - $0) }
        let calcification = zip(labels, selection).map { $0 == Segmentation.calcificationLabel && $1 }
        scores.calcification = CalcificationMetrics.compute(recon: recon.values, truth: truth.values,
                                                            calcification: calcification, shape: shape,
                                                            formula: formula)
    }

    static func gather(_ recon: [Double], _ truth: [Double], _ selection: [Bool]) -> ([Double], [Double]) {
        var r: [Double] = [], t: [Double] = []
        let count = selection.reduce(0) { $0 + ($1 ? 1 : 0) }
        r.reserveCapacity(count)
        t.reserveCapacity(count)
        for i in selection.indices where selection[i] { r.append(recon[i]); t.append(truth[i]) }
        return (r, t)
    }

    /// max − min over the grid (as scikit-image's data_range from the truth); nil when 0.
    static func dataRange(_ values: [Double]) -> Double? {
        guard let lo = values.min(), let hi = values.max(), hi > lo else { return nil }
        return hi - lo
    }

    static func position(_ index: Int, _ grid: Grid) -> String {
        let x = index % grid.shape.x, y = (index / grid.shape.x) % grid.shape.y, z = index / (grid.shape.x * grid.shape.y)
        return "voxel (\(x), \(y), \(z))"
    }

    /// Same shape, voxel size and affine (within 1e-3 mm plus 1e-5 relative, NIfTI float32 precision).
    static func requireSameGeometry(_ reference: Grid, _ other: Grid, _ name: String, _ otherName: String) throws(QSMError) {
        try reference.requireMatches(other, name, otherName)
        let differences = zip(reference.affine.entries, other.affine.entries).map { abs($0 - $1) }
        for (d, a) in zip(differences, reference.affine.entries) where d > 1e-3 + 1e-5 * abs(a) {
            throw .mismatch(otherName, "affine differs from \(name) (largest entry difference \(differences.max()!))")
        }
    }
}

extension Scores {
    /// Non-finite values replaced by nil (JSON has no NaN).
    func sanitized() -> Scores {
        func clean(_ v: Double?) -> Double? { v.flatMap { $0.isFinite ? $0 : nil } }
        var s = self
        s.rmse = clean(rmse); s.nrmse = clean(nrmse); s.nrmseDemeaned = clean(nrmseDemeaned)
        s.nrmseDetrended = clean(nrmseDetrended); s.hfen = clean(hfen); s.ssim = clean(ssim)
        s.xsim = clean(xsim); s.cc = clean(cc); s.nmi = clean(nmi)
        s.dgmSlope = clean(dgmSlope); s.dgmLinearity = clean(dgmLinearity)
        s.nrmseDetrendedVariants = nrmseDetrendedVariants.mapValues { clean($0) }
        for (k, v) in regions {
            s.regions[k]?.nrmseDemeaned = clean(v.nrmseDemeaned)
            s.regions[k]?.nrmseDetrended = clean(v.nrmseDetrended)
        }
        if var c = calcification {
            c.streak = clean(c.streak)
            s.calcification = c.momentDeviation.isFinite ? c : nil
        }
        s.labels = labels.filter { [$0.reconMean, $0.reconStd, $0.truthMean, $0.truthStd].allSatisfy(\.isFinite) }
        return s
    }
}
