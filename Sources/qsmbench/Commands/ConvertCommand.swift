import ArgumentParser
import QSMIO

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a volume between .nii, .nii.gz and .h5 (formats chosen by extension).",
        discussion: """
            NIfTI → NIfTI keeps the header (data type, scaling, qform/sform, description) and \
            the values; only the compression and byte order (little endian) may change. \
            NIfTI extensions are not copied.
            """)

    @Argument(help: ArgumentHelp("Input file (.nii, .nii.gz or .h5).", valueName: "IN")) var input: String
    @Argument(help: ArgumentHelp("Output file (.nii, .nii.gz or .h5); written atomically.", valueName: "OUT"))
    var output: String

    func run() throws {
        let from = try VolumeFileFormat(path: input, role: "IN")
        let to = try VolumeFileFormat(path: output, role: "OUT")
        switch (from, to) {
        case (.nifti, .nifti):
            try NIfTI.write(try NIfTI.read(input), to: output)
        case (.nifti, .hdf5):
            try HDF5Volumes.write(try NIfTI.readVolume(input), to: output)
        case (.hdf5, .nifti):
            try NIfTI.write(try HDF5Volumes.read(input), to: output)
        case (.hdf5, .hdf5):
            try HDF5Volumes.write(try HDF5Volumes.read(input), to: output)
        }
    }
}

/// The volume file formats `info` and `convert` accept, chosen by file-name extension.
enum VolumeFileFormat {
    case nifti, hdf5

    /// The format of `path`; `role` names the argument in the error for an unknown extension.
    init(path: String, role: String) throws(QSMError) {
        let name = path.lowercased()
        if name.hasSuffix(".nii") || name.hasSuffix(".nii.gz") {
            self = .nifti
        } else if name.hasSuffix(".h5") || name.hasSuffix(".hdf5") {
            self = .hdf5
        } else {
            throw .invalidOption(role, "'\(path)' has no known extension (.nii, .nii.gz, .h5)")
        }
    }
}

/// The HDF5 side of `info` and `convert`: one volume per file, stored as `/volume` with its geometry.
enum HDF5Volumes {
    /// The dataset `convert` writes to and prefers when reading.
    static let datasetPath = "/volume"

    /// Reads the volume (grid, frames, values) stored in an HDF5 file: `/volume`, or its only 3-D/4-D dataset.
    static func read(_ path: String) throws(QSMError) -> Volume<Float> {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        return try file.readVolume(try volumePath(in: file, path: path), as: Float.self)
    }

    /// Whether the file holds `/volume` or exactly one 3-D/4-D dataset.
    static func holdsVolume(_ path: String) throws(QSMError) -> Bool {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        do { _ = try volumePath(in: file, path: path); return true } catch { return false }
    }

    /// The dataset holding the volume, or an error naming the candidates.
    static func volumePath(in file: HDF5File, path: String) throws(QSMError) -> String {
        if file.exists(datasetPath) { return datasetPath }
        var candidates: [String] = []
        for dataset in try file.datasetPaths() where [3, 4].contains(try file.dataset(dataset).shape.count) {
            candidates.append(dataset)
        }
        guard candidates.count == 1 else {
            throw .invalidFile(path, candidates.isEmpty
                ? "holds no 3-D or 4-D dataset"
                : "holds several volumes (\(candidates.joined(separator: ", "))); none is \(datasetPath)")
        }
        return candidates[0]
    }

    /// Writes a volume (grid, frames, values) to `/volume` of a new HDF5 file, atomically.
    static func write(_ volume: Volume<Float>, to path: String) throws(QSMError) {
        let file = try HDF5File.create(path, atomic: true)
        try file.writeVolume(volume, to: datasetPath)
        try file.root.setAttribute("created_by", value: "qsmbench \(QSMBenchVersion.string)")
        try file.close()
    }
}
