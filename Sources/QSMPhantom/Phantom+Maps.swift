import Foundation
import QSMCore
import QSMIO

/// File names of a χ-map phantom (NIfTI): the layout qsm-forward's head phantom uses by default.
public struct PhantomFiles: Sendable, Hashable {
    /// χ map, ppm (required).
    public var chi: String
    /// Brain mask, non-zero inside (required).
    public var mask: String
    /// Segmentation, integer labels 0…255 (optional; default: the mask as label 1).
    public var segmentation: String?
    /// M0 map (optional; default 1 inside the mask, 0 outside, as qsm-forward).
    public var m0: String?
    /// R2* map, s⁻¹ (optional; default 50 s⁻¹ inside the mask, 0 outside, as qsm-forward).
    public var r2star: String?

    /// Explicit file names.
    public init(chi: String, mask: String, segmentation: String? = nil, m0: String? = nil, r2star: String? = nil) {
        self.chi = chi
        self.mask = mask
        self.segmentation = segmentation
        self.m0 = m0
        self.r2star = r2star
    }

    /// The qsm-forward head-phantom layout under `directory`: `chimodel/ChiModelMIX.nii`,
    /// `masks/BrainMask.nii.gz`, `masks/SegmentedModel.nii.gz`, `maps/M0.nii.gz`, `maps/R2star.nii.gz`
    /// (each also accepted with the other of `.nii`/`.nii.gz`; optional ones may be absent).
    public static func qsmForwardLayout(_ directory: String) throws(QSMError) -> PhantomFiles {
        func find(_ stem: String) -> String? {
            for candidate in [stem + ".nii", stem + ".nii.gz"] {
                let path = (directory as NSString).appendingPathComponent(candidate)
                if FileManager.default.fileExists(atPath: path) { return path }
            }
            return nil
        }
        guard let chi = find("chimodel/ChiModelMIX") else {
            throw .invalidFile(directory, "no chimodel/ChiModelMIX.nii[.gz] (the qsm-forward head phantom layout)")
        }
        guard let mask = find("masks/BrainMask") else {
            throw .invalidFile(directory, "no masks/BrainMask.nii[.gz] (the qsm-forward head phantom layout)")
        }
        return PhantomFiles(chi: chi, mask: mask, segmentation: find("masks/SegmentedModel"),
                            m0: find("maps/M0"), r2star: find("maps/R2star"))
    }
}

extension Phantom {
    /// A phantom from a user-supplied χ map and mask (NIfTI), with optional segmentation, M0 and R2*.
    ///
    /// The grid (and affine) is the χ map's; the local field comes from χ inside the mask. `name` is
    /// the BIDS subject label.
    public static func read(_ files: PhantomFiles, name: String = "chimap") throws(QSMError) -> Phantom {
        let chi = try NIfTI.readVolume(files.chi)
        guard chi.frames == 1 else { throw .invalidFile(files.chi, "has \(chi.frames) frames; a 3-D χ map is needed") }
        if let bad = chi.firstNonFinite { throw .invalidFile(files.chi, "χ is not finite at voxel \(bad)") }
        let grid = chi.grid
        func companion(_ path: String) throws(QSMError) -> Volume<Float> {
            var volume = try NIfTI.readVolume(path)
            guard volume.frames == 1 else { throw .invalidFile(path, "has \(volume.frames) frames; a 3-D map is needed") }
            try grid.requireMatches(volume.grid, files.chi, path)
            if let bad = volume.firstNonFinite { throw .invalidFile(path, "value is not finite at voxel \(bad)") }
            volume.grid = grid
            return volume
        }
        let maskValues = try companion(files.mask)
        let mask = maskValues.map { $0 > 0.5 }
        guard mask.insideCount > 0 else { throw .invalidFile(files.mask, "no voxel is inside the mask") }
        var segmentation = mask.map { UInt8($0 ? 1 : 0) }
        if let path = files.segmentation {
            let values = try companion(path)
            var labels = [UInt8](repeating: 0, count: grid.count)
            for (i, v) in values.voxels.enumerated() {
                let rounded = v.rounded()
                guard rounded >= 0, rounded <= 255, abs(v - rounded) < 1e-3 else {
                    throw .invalidFile(path, "value \(v) at voxel \(i) is not an integer label 0…255")
                }
                labels[i] = UInt8(rounded)
            }
            segmentation = try Volume(grid: grid, voxels: labels)
        }
        let m0 = try files.m0.map { path throws(QSMError) in try companion(path) } ?? mask.map { $0 ? 1 : 0 }
        if m0.voxels.contains(where: { $0 < 0 }) { throw .invalidFile(files.m0 ?? "M0", "M0 must not be negative") }
        let r2star = try files.r2star.map { path throws(QSMError) in try companion(path) } ?? mask.map { $0 ? 50 : 0 }
        if r2star.voxels.contains(where: { $0 < 0 }) { throw .invalidFile(files.r2star ?? "R2*", "R2* must not be negative") }

        // Label table: the mean of each map over each label's voxels.
        var sums: [Int: (chi: Double, m0: Double, r2: Double, count: Int)] = [:]
        for i in 0..<grid.count where segmentation.voxels[i] > 0 {
            let l = Int(segmentation.voxels[i])
            let s = sums[l] ?? (0, 0, 0, 0)
            sums[l] = (s.chi + Double(chi.voxels[i]), s.m0 + Double(m0.voxels[i]), s.r2 + Double(r2star.voxels[i]), s.count + 1)
        }
        let labels = sums.keys.sorted().map { l in
            let s = sums[l]!, n = Double(s.count)
            return SegmentationLabel(index: l, name: files.segmentation == nil ? "mask" : "label \(l)",
                                     chi: s.chi / n, m0: s.m0 / n, r2star: s.r2 / n)
        }
        return Phantom(name: name, chi: chi, mask: mask, m0: m0, r2star: r2star, segmentation: segmentation,
                       labels: labels)
    }
}
