import Foundation
import QSMCore

/// The entities that identify one multi-echo GRE series (everything in the file name except `echo` and `part`).
public struct MEGRESeriesKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// `sub-<label>` value.
    public var subject: String
    /// Other entities in file order (`ses`, `acq`, `rec`, `run`, …) as key/value pairs.
    public var entities: [(key: String, value: String)] {
        get { zip(entityKeys, entityValues).map { (key: $0, value: $1) } }
        set { entityKeys = newValue.map(\.key); entityValues = newValue.map(\.value) }
    }
    private var entityKeys: [String] = []
    private var entityValues: [String] = []

    /// A key from the subject label and the remaining entities in file order.
    public init(subject: String, entities: [(key: String, value: String)] = []) {
        self.subject = subject
        self.entities = entities
    }

    /// `ses-<label>` value, if any.
    public var session: String? { zip(entityKeys, entityValues).first { $0.0 == "ses" }?.1 }

    /// The BIDS base name: `sub-01_ses-1_acq-x_run-1` (QSMxT's `<base>`).
    public var baseName: String {
        (["sub-\(subject)"] + zip(entityKeys, entityValues).map { "\($0)-\($1)" }).joined(separator: "_")
    }

    /// The derivatives folder of this series relative to the dataset root: `sub-01[/ses-1]/anat`.
    public var anatomicalFolder: String {
        session.map { "sub-\(subject)/ses-\($0)/anat" } ?? "sub-\(subject)/anat"
    }

    public var description: String { baseName }

    public static func < (lhs: MEGRESeriesKey, rhs: MEGRESeriesKey) -> Bool { lhs.baseName < rhs.baseName }
}

/// One echo of a series: the phase and magnitude files with their JSON sidecars (paths, possibly missing).
public struct MEGREEcho: Sendable, Equatable {
    /// Echo index from `echo-<n>`.
    public var number: Int
    /// `_part-phase_MEGRE.nii[.gz]`, nil when absent.
    public var phasePath: String?
    /// `_part-mag_MEGRE.nii[.gz]` (or the file without `part`), nil when absent.
    public var magnitudePath: String?

    /// The sidecar beside a NIfTI file: same name with `.json`.
    public static func sidecarPath(of imagePath: String) -> String {
        for ext in [".nii.gz", ".nii"] where imagePath.hasSuffix(ext) {
            return String(imagePath.dropLast(ext.count)) + ".json"
        }
        return imagePath + ".json"
    }
}

/// One multi-echo GRE series as discovered on disk (nothing read yet).
public struct MEGRESeries: Sendable {
    /// Subject, session and other entities.
    public var key: MEGRESeriesKey
    /// Echoes sorted by number.
    public var echoes: [MEGREEcho]
}

/// How the stored phase values were turned into radians (BIDS-MEGRE.md §5).
public enum PhaseScalingDetection: String, Sendable, Codable, Equatable {
    /// Sidecar `Units: rad`, or values inside [−π − 0.1, π + 0.1]: used as stored.
    case radians
    /// Integers 0…4095 (raw Siemens 12-bit): φ = v·2π/4095 − π, so 0 → −π and 4095 → π.
    case unsigned12Bit = "0-4095"
    /// Integers −4096…4095 (Siemens after RescaleSlope 2, RescaleIntercept −4096): φ = v·π/4096.
    case signed12Bit = "-4096-4095"
    /// Any other range: φ = (v − min)·2π/(max − min) − π (SEPIA, QSM.rs `scale_phase_to_pi`).
    case minimumMaximum = "min-max"
}

/// A series read into memory: phase in radians and magnitude, one frame per echo, plus acquisition facts.
public struct MEGREData: Sendable {
    /// The series it came from.
    public var series: MEGRESeries
    /// Wrapped phase, rad, one frame per echo; the grid (and affine) of echo 1's phase file.
    public var phase: Volume<Float>
    /// Magnitude, one frame per echo.
    public var magnitude: Volume<Float>
    /// Echo times, s, from the sidecars' `EchoTime`.
    public var echoTimes: [Double]
    /// `MagneticFieldStrength`, T, from the sidecars (nil when no sidecar gives it).
    public var fieldStrength: Double?
    /// How the phase was brought to radians.
    public var phaseScaling: PhaseScalingDetection
    /// The stored phase range before rescaling (over all echoes).
    public var storedPhaseRange: ClosedRange<Double>
}

/// Finding and reading multi-echo GRE (`MEGRE`) series in a BIDS dataset (BIDS ≥ 1.5.0; BIDS-MEGRE.md).
///
/// Discovery walks `sub-*/[ses-*/]anat/` for `*_echo-<n>[_part-mag|_part-phase]_MEGRE.nii[.gz]`,
/// skipping `derivatives/` and hidden folders, and groups files by every entity except `echo` and
/// `part`. Reading validates each series in full before returning, so a caller that writes nothing
/// until `read` succeeds leaves no partial output for a bad series. Sidecar inheritance (JSON files
/// higher in the tree) is not implemented: each NIfTI needs its own sidecar.
public enum BIDSDataset {
    /// Every MEGRE series under `root`, sorted by base name; `subjects` (labels without `sub-`)
    /// restricts the search when non-empty. Throws when `root` is unreadable or holds no MEGRE data.
    public static func discover(_ root: String, subjects: [String] = []) throws(QSMError) -> [MEGRESeries] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .invalidFile(root, "is not a directory")
        }
        let wanted = Set(subjects.map { $0.hasPrefix("sub-") ? String($0.dropFirst(4)) : $0 })
        var groups: [MEGRESeriesKey: [Int: MEGREEcho]] = [:]
        for subjectFolder in (try? manager.contentsOfDirectory(atPath: root))?.sorted() ?? [] where subjectFolder.hasPrefix("sub-") {
            let label = String(subjectFolder.dropFirst(4))
            if !wanted.isEmpty && !wanted.contains(label) { continue }
            let subjectPath = (root as NSString).appendingPathComponent(subjectFolder)
            var anatFolders = [(subjectPath as NSString).appendingPathComponent("anat")]
            for session in (try? manager.contentsOfDirectory(atPath: subjectPath))?.sorted() ?? [] where session.hasPrefix("ses-") {
                anatFolders.append(((subjectPath as NSString).appendingPathComponent(session) as NSString).appendingPathComponent("anat"))
            }
            for folder in anatFolders {
                for name in (try? manager.contentsOfDirectory(atPath: folder))?.sorted() ?? [] {
                    guard let parsed = parseName(name) else { continue }
                    let path = (folder as NSString).appendingPathComponent(name)
                    var echo = groups[parsed.key, default: [:]][parsed.echo] ?? MEGREEcho(number: parsed.echo)
                    switch parsed.part {
                    case "phase": echo.phasePath = path
                    case "mag", nil: echo.magnitudePath = path
                    default: continue  // real/imag pairs are not used
                    }
                    groups[parsed.key, default: [:]][parsed.echo] = echo
                }
            }
        }
        guard !groups.isEmpty else {
            let which = wanted.isEmpty ? "" : " for subject(s) \(wanted.sorted().joined(separator: ", "))"
            throw .invalidFile(root, "no *_echo-<n>_part-{mag,phase}_MEGRE.nii[.gz] files found\(which) in sub-*/[ses-*/]anat")
        }
        return groups.map { MEGRESeries(key: $0.key, echoes: $0.value.values.sorted { $0.number < $1.number }) }
            .sorted { $0.key < $1.key }
    }

    /// Parses `sub-…_echo-<n>[_part-…]_MEGRE.nii[.gz]`; nil for any other file.
    static func parseName(_ name: String) -> (key: MEGRESeriesKey, echo: Int, part: String?)? {
        var stem: Substring
        if name.hasSuffix("_MEGRE.nii.gz") { stem = name.dropLast("_MEGRE.nii.gz".count) }
        else if name.hasSuffix("_MEGRE.nii") { stem = name.dropLast("_MEGRE.nii".count) }
        else { return nil }
        if stem.hasPrefix(".") { return nil }
        var subject: String?, echo: Int?, part: String?
        var others: [(key: String, value: String)] = []
        for pair in stem.split(separator: "_") {
            guard let dash = pair.firstIndex(of: "-") else { return nil }
            let key = String(pair[..<dash]), value = String(pair[pair.index(after: dash)...])
            guard !value.isEmpty else { return nil }
            switch key {
            case "sub": subject = value
            case "echo": echo = Int(value)
            case "part": part = value
            default: others.append((key, value))
            }
        }
        guard let subject, let echo else { return nil }
        return (MEGRESeriesKey(subject: subject, entities: others), echo, part)
    }

    /// Reads and validates every file of `series`: echoes numbered 1…N each with phase, magnitude and
    /// sidecars, `EchoTime` in every sidecar, equal grids and affines, finite values; phase brought
    /// to radians by `Units` and range. The first problem found is thrown, naming its file.
    public static func read(_ series: MEGRESeries) throws(QSMError) -> MEGREData {
        let echoes = series.echoes
        let anyFile = echoes.first.flatMap { $0.phasePath ?? $0.magnitudePath } ?? series.key.baseName
        for (index, echo) in echoes.enumerated() where echo.number != index + 1 {
            let expected = index + 1
            throw .invalidFile(echo.phasePath ?? echo.magnitudePath ?? anyFile,
                               "echo-\(expected) of \(series.key.baseName) is missing (echoes found: \(echoes.map(\.number).map(String.init).joined(separator: ",")))")
        }
        var phaseFrames: [Volume<Float>] = [], magnitudeFrames: [Volume<Float>] = []
        var echoTimes: [Double] = [], fieldStrength: Double?
        var units: [String?] = []
        var reference: (grid: Grid, path: String)?
        for echo in echoes {
            let base = "\(series.key.baseName)_echo-\(echo.number)"
            guard let phasePath = echo.phasePath else {
                throw .invalidFile(echo.magnitudePath ?? anyFile, "\(base)_part-phase_MEGRE.nii[.gz] is missing")
            }
            guard let magnitudePath = echo.magnitudePath else {
                throw .invalidFile(phasePath, "\(base)_part-mag_MEGRE.nii[.gz] is missing")
            }
            let phaseSidecar = try Sidecar.read(MEGREEcho.sidecarPath(of: phasePath))
            _ = try Sidecar.read(MEGREEcho.sidecarPath(of: magnitudePath))
            guard let te = phaseSidecar.number("EchoTime") else {
                throw .invalidFile(phaseSidecar.path, "has no numeric EchoTime (seconds; required for MEGRE)")
            }
            guard te.isFinite, te > 0, te < 1 else {
                throw .invalidFile(phaseSidecar.path, "EchoTime \(te) is not a positive time in seconds")
            }
            if let previous = echoTimes.last, te <= previous {
                throw .invalidFile(phaseSidecar.path, "EchoTime \(te) s does not exceed the previous echo's \(previous) s")
            }
            echoTimes.append(te)
            if let b0 = phaseSidecar.number("MagneticFieldStrength") {
                if let known = fieldStrength, abs(known - b0) > 1e-9 {
                    throw .invalidFile(phaseSidecar.path, "MagneticFieldStrength \(b0) T differs from echo 1 (\(known) T)")
                }
                fieldStrength = b0
            }
            units.append(phaseSidecar.string("Units"))
            for (path, isPhase) in [(phasePath, true), (magnitudePath, false)] {
                let volume = try NIfTI.readVolume(path)
                guard volume.frames == 1 else {
                    throw .invalidFile(path, "has \(volume.frames) volumes; one 3-D image per echo and part is expected")
                }
                if let reference {
                    try sameGeometry(volume.grid, as: reference.grid, path: path, referencePath: reference.path)
                } else {
                    reference = (volume.grid, path)
                }
                if let bad = volume.voxels.firstIndex(where: { !$0.isFinite }) {
                    throw .invalidFile(path, "holds a non-finite value (\(volume.voxels[bad])) at voxel \(bad)")
                }
                if isPhase { phaseFrames.append(volume) } else { magnitudeFrames.append(volume) }
            }
        }
        let grid = reference!.grid
        var phase = try stack(phaseFrames, grid: grid)
        let magnitude = try stack(magnitudeFrames, grid: grid)
        let low = Double(phase.voxels.min() ?? 0), high = Double(phase.voxels.max() ?? 0)
        let declared = Set(units.compactMap { $0?.lowercased() })
        let scaling = try detectScaling(minimum: low, maximum: high, declaredRadians: declared == ["rad"],
                                        path: echoes[0].phasePath!)
        rescale(&phase, scaling, minimum: low, maximum: high)
        return MEGREData(series: series, phase: phase, magnitude: magnitude, echoTimes: echoTimes,
                         fieldStrength: fieldStrength, phaseScaling: scaling, storedPhaseRange: low...high)
    }

    /// The scaling rule for stored phase values in [minimum, maximum] (BIDS-MEGRE.md §5 recommendation).
    ///
    /// `Units: rad` is trusted unless the values clearly are not radians (then the file is refused,
    /// since the sidecar contradicts the data). Otherwise: inside [−π − 0.1, π + 0.1] → radians;
    /// integers within 0…4095 → 12-bit unsigned; within −4096…4095 with negatives → 12-bit signed;
    /// anything else → min–max rescaling.
    public static func detectScaling(minimum: Double, maximum: Double, declaredRadians: Bool,
                                     path: String) throws(QSMError) -> PhaseScalingDetection {
        let tolerance = 0.1
        let looksRadian = minimum >= -Double.pi - tolerance && maximum <= Double.pi + tolerance
        if declaredRadians {
            guard looksRadian else {
                throw .invalidFile(MEGREEcho.sidecarPath(of: path),
                                   "Units is rad but the phase spans [\(minimum), \(maximum)]")
            }
            return .radians
        }
        if looksRadian { return .radians }
        if minimum >= 0 && maximum <= 4095 { return .unsigned12Bit }
        if minimum >= -4096 && maximum <= 4095 && minimum < 0 { return .signed12Bit }
        guard maximum > minimum else { throw .invalidFile(path, "phase is constant (\(minimum)); cannot scale it") }
        return .minimumMaximum
    }

    // MARK: - Implementation details

    private static func rescale(_ phase: inout Volume<Float>, _ scaling: PhaseScalingDetection, minimum: Double, maximum: Double) {
        let factor: Double, offset: Double
        switch scaling {
        case .radians: return
        case .unsigned12Bit: factor = 2 * .pi / 4095; offset = -.pi
        case .signed12Bit: factor = .pi / 4096; offset = 0
        case .minimumMaximum: factor = 2 * .pi / (maximum - minimum); offset = -.pi - minimum * factor
        }
        for i in phase.voxels.indices { phase.voxels[i] = Float(Double(phase.voxels[i]) * factor + offset) }
    }

    private static func stack(_ frames: [Volume<Float>], grid: Grid) throws(QSMError) -> Volume<Float> {
        var voxels: [Float] = []
        voxels.reserveCapacity(frames.count * grid.count)
        for f in frames { voxels += f.voxels }
        return try Volume(grid: grid, frames: frames.count, voxels: voxels)
    }

    /// Same shape, voxel size and affine (to 1e-4 mm: float32 header round-off is ~1e-5 mm at 200 mm).
    private static func sameGeometry(_ grid: Grid, as reference: Grid, path: String, referencePath: String) throws(QSMError) {
        let name = (referencePath as NSString).lastPathComponent
        guard grid.shape == reference.shape else {
            throw .mismatch(path, "shape \(grid.shapeText) differs from \(name) (\(reference.shapeText))")
        }
        let worst = zip(grid.affine.entries, reference.affine.entries).map { abs($0 - $1) }.max() ?? 0
        guard worst <= 1e-4 else {
            throw .mismatch(path, "affine differs from \(name) by up to \(worst) mm")
        }
    }
}

/// A BIDS JSON sidecar: a flat object of metadata.
struct Sidecar {
    var path: String
    var values: [String: Any]

    static func read(_ path: String) throws(QSMError) -> Sidecar {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .invalidFile(path, "sidecar is missing or unreadable")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let values = object as? [String: Any] else {
            throw .invalidFile(path, "is not a JSON object")
        }
        return Sidecar(path: path, values: values)
    }

    func number(_ key: String) -> Double? {
        // No Bool exclusion: on Linux an integer NSNumber 1 also casts to Bool, and `true` is no time anyway.
        (values[key] as? NSNumber)?.doubleValue
    }

    func string(_ key: String) -> String? { values[key] as? String }
}
