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

/// The HDF5 side of `info` and `convert`: one volume per file. This branch has no HDF5 reader
/// or writer; the integration fills these two functions with the QSMIO HDF5 API.
enum HDF5Volumes {
    /// Reads the volume (grid, frames, values) stored in an HDF5 file.
    static func read(_ path: String) throws(QSMError) -> Volume<Float> {
        throw .invalidFile(path, "HDF5 support is not built in this branch")
    }

    /// Writes a volume (grid, frames, values) to an HDF5 file.
    static func write(_ volume: Volume<Float>, to path: String) throws(QSMError) {
        throw .invalidFile(path, "HDF5 support is not built in this branch")
    }
}
