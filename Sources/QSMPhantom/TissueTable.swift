import Foundation
import QSMCore
import Yams

/// The tissue table of the head phantom: χ, M0 and R2* per label, with their sources.
public struct TissueTable: Sendable, Hashable, Codable {
    /// One tissue.
    public struct Tissue: Sendable, Hashable, Codable {
        /// Integer written to the segmentation.
        public var label: Int
        /// Tissue name.
        public var name: String
        /// Susceptibility, ppm.
        public var chi: Double
        /// Relative proton density.
        public var m0: Double
        /// R2* at `referenceFieldStrength`, s⁻¹.
        public var r2star: Double
        /// Whether the tissue is intracranial (inside the brain mask).
        public var inMask: Bool
        /// Citation keys (see the YAML file's header).
        public var sources: [String]

        enum CodingKeys: String, CodingKey {
            case label, name, chi, m0, r2star, sources
            case inMask = "in_mask"
        }
    }

    /// Field strength (T) the R2* values are given at.
    public var referenceFieldStrength: Double
    /// How R2* scales with B0; only `linear` (R2* ∝ B0; Peters et al. 2007) is defined.
    public var r2starFieldScaling: String
    /// The tissues.
    public var tissues: [Tissue]

    enum CodingKeys: String, CodingKey {
        case tissues
        case referenceFieldStrength = "reference_field_strength"
        case r2starFieldScaling = "r2star_field_scaling"
    }

    /// The built-in table (the content of `phantoms/head-tissues.yaml`).
    public static func builtIn() throws(QSMError) -> TissueTable {
        try decode(builtInYAML, source: "built-in tissue table")
    }

    /// Reads a tissue table from a YAML file.
    public static func read(_ path: String) throws(QSMError) -> TissueTable {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .invalidFile(path, "cannot read the tissue table")
        }
        return try decode(text, source: path)
    }

    /// Decodes and checks a YAML tissue table; `source` names it in errors.
    public static func decode(_ text: String, source: String) throws(QSMError) -> TissueTable {
        let table: TissueTable
        do { table = try YAMLDecoder().decode(TissueTable.self, from: text) } catch {
            throw .invalidFile(source, "not a tissue table: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        try table.validate(source: source)
        return table
    }

    /// Throws unless every label 0…14 the head geometry uses is present once with usable values.
    public func validate(source: String) throws(QSMError) {
        guard referenceFieldStrength.isFinite, referenceFieldStrength > 0 else {
            throw .invalidFile(source, "reference_field_strength \(referenceFieldStrength) must be positive")
        }
        guard r2starFieldScaling == "linear" || r2starFieldScaling == "none" else {
            throw .invalidFile(source, "r2star_field_scaling '\(r2starFieldScaling)' is not linear or none")
        }
        for label in HeadLabel.allCases {
            let matches = tissues.filter { $0.label == label.rawValue }
            guard matches.count == 1 else {
                throw .invalidFile(source, "label \(label.rawValue) (\(label)) appears \(matches.count) times; expected once")
            }
        }
        for t in tissues {
            guard t.chi.isFinite, t.m0.isFinite, t.m0 >= 0, t.r2star.isFinite, t.r2star >= 0 else {
                throw .invalidFile(source, "tissue '\(t.name)': chi must be finite, m0 and r2star non-negative")
            }
        }
    }

    /// The tissue with `label`.
    public func tissue(_ label: HeadLabel) -> Tissue { tissues.first { $0.label == label.rawValue }! }

    /// R2* of `tissue` at `fieldStrength` (T) under `r2starFieldScaling`.
    public func r2star(_ tissue: Tissue, at fieldStrength: Double) -> Double {
        r2starFieldScaling == "linear" ? tissue.r2star * fieldStrength / referenceFieldStrength : tissue.r2star
    }
}

/// Labels of the head phantom's segmentation, numbered as the QSM reconstruction challenge 2.0
/// head phantom (Marques JP et al. MRM 2021;86:526–542), which qsm-forward and qsm-ci use, so
/// regional metrics (DGM 1–6, blood 11, calcification 16) apply to simulated data directly.
public enum HeadLabel: Int, CaseIterable, Sendable {
    /// Air around the head.
    case air = 0
    /// Cerebral white matter and brainstem.
    case whiteMatter = 8
    /// Cortical grey matter.
    case corticalGreyMatter = 9
    /// Ventricles, sulcal and subarachnoid CSF.
    case csf = 10
    /// Caudate nucleus.
    case caudate = 1
    /// Putamen.
    case putamen = 3
    /// Globus pallidus.
    case globusPallidus = 2
    /// Thalamus.
    case thalamus = 7
    /// Red nucleus.
    case redNucleus = 4
    /// Substantia nigra.
    case substantiaNigra = 6
    /// Dural sinuses and large veins.
    case veins = 11
    /// Optional calcification.
    case calcification = 16
    /// Scalp and soft tissue.
    case softTissue = 15
    /// Skull bone.
    case skull = 13
    /// Air inside the head (paranasal sinuses, nasal cavity, ear canals).
    case sinusAir = 14
}

/// `phantoms/head-tissues.yaml`, compiled in so the tool needs no resource files.
let builtInYAML = #"""
# Tissue properties of qsmbench's built-in numerical head phantom (`qsmbench simulate --phantom head`).
#
# Edit freely and pass the file with `--tissues FILE`; the compiled-in default is this file's content
# (a test checks that the two agree). Units: chi in ppm (SI volume susceptibility relative to water,
# the QSM convention where CSF ≈ 0), m0 relative proton density (CSF = 1), r2star in 1/s at
# `reference_field_strength`. Labels are the integers written to `_dseg.nii.gz`; label 0 is the air
# around the head. `in_mask: true` marks intracranial tissues (the brain mask; their susceptibility
# makes the local field, everything else the background field).
#
# The values are representative literature values chosen from the ranges below, not measurements of
# one subject; they sit inside the ranges used by the QSM reconstruction challenge 2.0 phantom.
#
# Sources (keys used in `sources:` below):
#   challenge2: Marques JP, Meineke J, Milovic C, et al. QSM reconstruction challenge 2.0: a realistic
#     in silico head phantom for MRI data simulation and evaluation of susceptibility mapping procedures.
#     Magn Reson Med 2021;86:526-542. doi:10.1002/mrm.28716 (tissue ranges of the head model).
#   deistung2013: Deistung A, Schäfer A, Schweser F, et al. Toward in vivo histology: a comparison of
#     quantitative susceptibility mapping (QSM) with magnitude-, phase-, and R2*-imaging at ultra-high
#     magnetic field strength. NeuroImage 2013;65:299-314. doi:10.1016/j.neuroimage.2012.09.055 (deep grey matter chi and R2*).
#   li2014: Li W, Wu B, Batrachenko A, et al. Differential developmental trajectories of magnetic
#     susceptibility in human brain gray and white matter over the lifespan. Hum Brain Mapp
#     2014;35:2698-2713. doi:10.1002/hbm.22360 (white/grey matter and nuclei chi, adults).
#   peters2007: Peters AM, Brookes MJ, Hoogenraad FG, et al. T2* measurements in human brain at 1.5, 3
#     and 7 T. Magn Reson Imaging 2007;25:748-753. doi:10.1016/j.mri.2007.02.014 (R2* at 3 T; R2* grows
#     about linearly with B0, the scaling rule below).
#   schenck1996: Schenck JF. The role of magnetic susceptibility in magnetic resonance imaging: MRI
#     magnetic compatibility of the first and second kinds. Med Phys 1996;23:815-850. doi:10.1118/1.597854
#     (air +9.4 ppm and soft tissue relative to water).
#   hopkins1997: Hopkins JA, Wehrli FW. Magnetic susceptibility measurement of insoluble solids by NMR:
#     magnetic susceptibility of bone. Magn Reson Med 1997;37:494-500. doi:10.1002/mrm.1910370404
#     (cortical bone about 2 ppm more diamagnetic than water).
#   weisskoff1992: Weisskoff RM, Kiihne S. MRI susceptometry: image-based measurement of absolute
#     susceptibility of MR contrast agents and human blood. Magn Reson Med 1992;24:375-383.
#     doi:10.1002/mrm.1910240219 (venous blood: Δχ(deoxy) 3.39 ppm × Hct 0.42 × (1 − Y 0.65) ≈ 0.5; challenge 2.0 veins lower).
#   chen2014: Chen W, Zhu W, Kovanlikaya I, et al. Intracranial calcifications and hemorrhages:
#     characterization with quantitative susceptibility mapping. Radiology 2014;270:496-505.
#     doi:10.1148/radiol.13122640 (calcifications strongly diamagnetic, about −0.1 to −0.6 ppm).

reference_field_strength: 3.0        # T; the r2star values below are at this field
r2star_field_scaling: linear         # R2*(B0) = R2*(3 T) · B0 / 3 T  (peters2007)

tissues:
  - {label: 8,  name: white matter,             chi: -0.030, m0: 0.69, r2star: 21.0, in_mask: true,  sources: [li2014, peters2007]}
  - {label: 9,  name: cortical grey matter,     chi:  0.015, m0: 0.80, r2star: 17.0, in_mask: true,  sources: [li2014, peters2007]}
  - {label: 10, name: cerebrospinal fluid,      chi:  0.000, m0: 1.00, r2star:  4.0, in_mask: true,  sources: [challenge2]}
  - {label: 1,  name: caudate,                  chi:  0.060, m0: 0.78, r2star: 24.0, in_mask: true,  sources: [deistung2013, li2014, peters2007]}
  - {label: 3,  name: putamen,                  chi:  0.050, m0: 0.78, r2star: 28.0, in_mask: true,  sources: [deistung2013, li2014, peters2007]}
  - {label: 2,  name: globus pallidus,          chi:  0.150, m0: 0.72, r2star: 42.0, in_mask: true,  sources: [deistung2013, li2014, peters2007]}
  - {label: 7,  name: thalamus,                 chi:  0.020, m0: 0.75, r2star: 23.0, in_mask: true,  sources: [deistung2013, li2014]}
  - {label: 4,  name: red nucleus,              chi:  0.120, m0: 0.72, r2star: 34.0, in_mask: true,  sources: [deistung2013, li2014]}
  - {label: 6,  name: substantia nigra,         chi:  0.150, m0: 0.72, r2star: 38.0, in_mask: true,  sources: [deistung2013, li2014]}
  - {label: 11, name: veins,                    chi:  0.350, m0: 0.85, r2star: 45.0, in_mask: true,  sources: [challenge2, weisskoff1992]}
  - {label: 16, name: calcification,            chi: -0.250, m0: 0.30, r2star: 150.0, in_mask: true, sources: [chen2014, challenge2]}
  - {label: 15, name: scalp and soft tissue,    chi:  0.000, m0: 0.75, r2star: 30.0, in_mask: false, sources: [schenck1996]}
  - {label: 13, name: skull,                    chi: -2.000, m0: 0.05, r2star: 300.0, in_mask: false, sources: [hopkins1997]}
  - {label: 14, name: sinus air,                chi:  9.400, m0: 0.00, r2star: 0.0, in_mask: false, sources: [schenck1996]}
  - {label: 0,  name: air,                      chi:  9.400, m0: 0.00, r2star: 0.0, in_mask: false, sources: [schenck1996]}
"""#
