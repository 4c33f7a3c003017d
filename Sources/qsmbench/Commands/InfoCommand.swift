import ArgumentParser
import QSMIO

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print shape, voxel size, affine, data type and value range of a NIfTI or HDF5 volume.",
        discussion: """
            Values are scaled (scl_slope/scl_inter applied as nibabel does); min, max and mean \
            cover the finite voxels of all frames (complex data: the magnitude).
            """)

    @Argument(help: ArgumentHelp("A .nii, .nii.gz or .h5 file.", valueName: "FILE")) var file: String
    @Flag(help: "Print JSON with keys shape, voxel_size, affine, datatype, min, max, mean.") var json = false

    func run() throws {
        if case .hdf5 = try VolumeFileFormat(path: file, role: "FILE"), try !HDF5Volumes.holdsVolume(file) {
            // Not a single volume (e.g. a results file): the tree is the summary.
            let handle = try HDF5File.open(file)
            defer { try? handle.close() }
            if json {
                let paths = try handle.datasetPaths().map { "\"\($0)\"" }.joined(separator: ", ")
                print("{\n  \"format\": \"hdf5\",\n  \"datasets\": [\(paths)]\n}")
            } else {
                print(try handle.describeTree(), terminator: "")
            }
            return
        }
        let summary = try VolumeSummary(path: file)
        print(json ? summary.json : summary.text)
    }
}

/// What `info` reports about one file.
struct VolumeSummary {
    var shape: [Int]
    var voxelSize: SIMD3<Double>
    var affine: Affine
    var datatype: String
    var statistics: ValueStatistics
    /// Format details shown in the text output (version, compression, scaling, affine source).
    var details: [(label: String, value: String)] = []
    /// Extra JSON members (already encoded values), after the required keys.
    var extraJSON: [(key: String, value: String)] = []

    init(path: String) throws(QSMError) {
        switch try VolumeFileFormat(path: path, role: "FILE") {
        case .nifti: try self.init(nifti: path)
        case .hdf5: try self.init(hdf5: path)
        }
    }

    init(volume: Volume<Float>, datatype: String) {
        shape = [volume.shape.x, volume.shape.y, volume.shape.z] + (volume.frames > 1 ? [volume.frames] : [])
        voxelSize = volume.grid.voxelSize
        affine = volume.grid.affine
        self.datatype = datatype
        statistics = ValueStatistics(volume.voxels.lazy.map { Double($0) })
    }

    init(hdf5 path: String) throws(QSMError) {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        let tree = try file.describeTree()
        let dataset = try HDF5Volumes.volumePath(in: file, path: path)
        self.init(volume: try file.readVolume(dataset, as: Float.self),
                  datatype: "\(try file.dataset(dataset).elementType)")
        details = [("format", "HDF5"), ("dataset", dataset), ("tree", "\n" + tree)]
        extraJSON = [("format", "\"hdf5\""), ("dataset", "\"\(dataset)\"")]
    }

    init(nifti path: String) throws(QSMError) {
        let image = try NIfTI.read(path)
        let header = image.header
        let grid = image.values.grid
        shape = Array(header.dim[1...header.dim[0]])
        voxelSize = grid.voxelSize
        affine = grid.affine
        datatype = header.datatype.description
        if let imaginary = image.imaginary {
            statistics = ValueStatistics(zip(image.values.voxels, imaginary.voxels).lazy.map { ($0 * $0 + $1 * $1).squareRoot() })
        } else {
            statistics = ValueStatistics(image.values.voxels)
        }
        let compressed = path.lowercased().hasSuffix(".gz")
        let scaling = header.scaling.map { "scl_slope \($0.slope), scl_inter \($0.intercept)" } ?? "none"
        let codes = "qform_code \(header.qformCode), sform_code \(header.sformCode)"
        details = [
            ("format", "NIfTI-\(header.version.rawValue), \(header.isLittleEndian ? "little" : "big") endian"
                + (compressed ? ", gzip" : "")),
            ("scaling", scaling),
            ("units (xyzt_units, not applied)", unitNames(header.units)),
            ("affine from", "\(header.bestAffineSource.rawValue) (\(codes))"),
        ]
        if !header.description.isEmpty { details.append(("description", header.description)) }
        extraJSON = [
            ("format", "\"nifti\(header.version.rawValue)\""),
            ("affine_source", "\"\(header.bestAffineSource.rawValue)\""),
            ("scl_slope", jsonNumber(header.scaling?.slope ?? 1)),
            ("scl_inter", jsonNumber(header.scaling?.intercept ?? 0)),
            ("non_finite", "\(statistics.nonFiniteCount)"),
        ]
    }

    var text: String {
        var lines = [
            "shape: " + shape.map(String.init).joined(separator: "×"),
            "voxel size: \(shortest(voxelSize.x)) × \(shortest(voxelSize.y)) × \(shortest(voxelSize.z)) mm",
            "datatype: \(datatype)",
        ]
        lines += details.map { "\($0.label): \($0.value)" }
        lines.append("affine:")
        for row in 0..<4 {
            lines.append("  " + (0..<4).map { format(affine[row, $0], digits: 4) }.joined(separator: "  "))
        }
        if statistics.finiteCount > 0 {
            lines.append("values: min \(shortest(statistics.minimum)), max \(shortest(statistics.maximum)), "
                + "mean \(shortest(statistics.mean))"
                + (statistics.nonFiniteCount > 0 ? " (\(statistics.nonFiniteCount) non-finite voxels excluded)" : ""))
        } else {
            lines.append("values: no finite voxels")
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var members: [(String, String)] = [
            ("shape", "[" + shape.map(String.init).joined(separator: ", ") + "]"),
            ("voxel_size", "[" + (0..<3).map { jsonNumber(voxelSize[$0]) }.joined(separator: ", ") + "]"),
            ("affine", "[" + (0..<4).map { row in
                "[" + (0..<4).map { jsonNumber(affine[row, $0]) }.joined(separator: ", ") + "]"
            }.joined(separator: ", ") + "]"),
            ("datatype", "\"\(datatype)\""),
            ("min", statistics.finiteCount > 0 ? jsonNumber(statistics.minimum) : "null"),
            ("max", statistics.finiteCount > 0 ? jsonNumber(statistics.maximum) : "null"),
            ("mean", statistics.finiteCount > 0 ? jsonNumber(statistics.mean) : "null"),
        ]
        members += extraJSON
        return "{\n" + members.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}"
    }
}

/// "mm, s" from `xyzt_units` (spatial code in bits 0–2, temporal in bits 3–5).
private func unitNames(_ code: Int) -> String {
    let spatial = [0: "unspecified", 1: "m", 2: "mm", 3: "µm"][code & 0x07] ?? "code \(code & 0x07)"
    let temporal = [0: "unspecified", 8: "s", 16: "ms", 24: "µs", 32: "Hz", 40: "ppm", 48: "rad/s"][code & 0x38]
        ?? "code \(code & 0x38)"
    return "\(spatial), \(temporal)"
}

/// Minimum, maximum and mean (accumulated in Double) of the finite values.
struct ValueStatistics {
    var minimum = Double.infinity, maximum = -Double.infinity, mean = 0.0
    var finiteCount = 0, nonFiniteCount = 0

    init(_ values: some Sequence<Double>) {
        var sum = 0.0
        for value in values {
            guard value.isFinite else { nonFiniteCount += 1; continue }
            minimum = min(minimum, value)
            maximum = max(maximum, value)
            sum += value
            finiteCount += 1
        }
        mean = finiteCount > 0 ? sum / Double(finiteCount) : .nan
    }
}

/// The shortest text that reads back as `value`; a value that is exactly a Float (NIfTI-1 fields,
/// float32 voxels) prints as that Float, so 0.8 stored as float32 shows as 0.8.
func shortest(_ value: Double) -> String {
    if value.isFinite, Double(Float(value)) == value { return "\(Float(value))" }
    return "\(value)"
}

/// A JSON number (shortest form as `shortest`, integers without ".0"); non-finite values become null.
func jsonNumber(_ value: Double) -> String {
    guard value.isFinite else { return "null" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
    return shortest(value)
}
