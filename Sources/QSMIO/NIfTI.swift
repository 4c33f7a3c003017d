import Foundation

/// A NIfTI file's header with its voxel values, scaled by `scl_slope`/`scl_inter` (see
/// `NIfTIHeader.scaling`) and held in Double so every stored type (up to int32 exactly) fits.
///
/// `values` holds all frames (4-D files: `frames` > 1) on the grid from `header.bestAffine`.
/// For complex data `values` holds the real parts and `imaginary` the imaginary parts; the
/// intercept is added to the real part only, as nibabel's `data * slope + inter` does.
public struct NIfTIImage: Sendable {
    /// The header as read.
    public var header: NIfTIHeader
    /// Scaled values (real parts for complex data).
    public var values: Volume<Double>
    /// Scaled imaginary parts for complex64/complex128 files, otherwise nil.
    public var imaginary: Volume<Double>?

    /// An image from a header and values on one grid (imaginary parts only for complex types).
    public init(header: NIfTIHeader, values: Volume<Double>, imaginary: Volume<Double>? = nil) {
        self.header = header
        self.values = values
        self.imaginary = imaginary
    }
}

/// Reading and writing NIfTI-1 and NIfTI-2 single files (`.nii`, and gzip-compressed `.nii.gz`).
///
/// Compression is detected from the gzip magic number when reading and chosen by a `.gz` suffix
/// when writing. Files are written little endian, atomically (`AtomicFile`). See docs/NIFTI.md.
public enum NIfTI {
    // MARK: - Reading

    /// Reads and validates the header only (a `.nii.gz` is decompressed just far enough).
    public static func readHeader(_ path: String) throws(QSMError) -> NIfTIHeader {
        let bytes = try fileBytes(path, prefix: NIfTIVersion.nifti2.dataOffset)
        return try bytes.withRawBytes { buffer throws(QSMError) in try NIfTIHeader.parse(buffer, name: path) }
    }

    /// Reads header and voxel values (scaled, as Double).
    public static func read(_ path: String) throws(QSMError) -> NIfTIImage {
        let bytes = try fileBytes(path)
        return try bytes.withRawBytes { buffer throws(QSMError) -> NIfTIImage in
            let header = try NIfTIHeader.parse(buffer, name: path)
            let data = try dataRegion(of: buffer, header: header, name: path)
            let grid = self.grid(of: header)
            let count = header.voxelCount!  // validated by parse
            if header.datatype.isComplex {
                let interleaved: [Double] = decode(data, count: 2 * count, header: header, scaling: nil)
                let slope = header.scaling?.slope ?? 1, intercept = header.scaling?.intercept ?? 0
                var real = [Double](repeating: 0, count: count), imaginary = real
                for i in 0..<count {
                    real[i] = interleaved[2 * i] * slope + intercept
                    imaginary[i] = interleaved[2 * i + 1] * slope
                }
                return NIfTIImage(
                    header: header,
                    values: try Volume(grid: grid, frames: header.frames, voxels: real),
                    imaginary: try Volume(grid: grid, frames: header.frames, voxels: imaginary))
            }
            let values: [Double] = decode(data, count: count, header: header, scaling: header.scaling)
            return NIfTIImage(header: header, values: try Volume(grid: grid, frames: header.frames, voxels: values))
        }
    }

    /// Reads scaled voxel values as Float on the grid from `header.bestAffine`; 4-D files become
    /// frames. Complex files are refused (use `read`, which keeps both parts).
    public static func readVolume(_ path: String) throws(QSMError) -> Volume<Float> {
        let bytes = try fileBytes(path)
        return try bytes.withRawBytes { buffer throws(QSMError) -> Volume<Float> in
            let header = try NIfTIHeader.parse(buffer, name: path)
            guard !header.datatype.isComplex else {
                throw .invalidFile(path, "holds \(header.datatype) data; a real-valued volume is needed here")
            }
            let data = try dataRegion(of: buffer, header: header, name: path)
            let values: [Float] = decode(data, count: header.voxelCount!, header: header, scaling: header.scaling)
            return try Volume(grid: grid(of: header), frames: header.frames, voxels: values)
        }
    }

    /// The grid of one frame: shape and voxel size from dim/pixdim, affine by precedence.
    static func grid(of header: NIfTIHeader) -> Grid {
        Grid(shape: header.shape, voxelSize: header.voxelSize, affine: header.bestAffine)
    }

    // MARK: - Writing

    /// Writes float32 values with sform and qform (code 1, scanner) from the grid's affine, units
    /// mm and s; NIfTI-1 unless a dimension exceeds 32767; gzip-compressed when `path` ends in `.gz`.
    public static func write(_ volume: Volume<Float>, to path: String, description: String = "qsmbench") throws(QSMError) {
        try write(volume, to: path, datatype: .float32, description: description)
    }

    /// Writes `volume` stored as `datatype` with stored = (value − intercept) / slope (integer types
    /// round to nearest; a value that does not fit, or NaN, is an error). Geometry as the float32
    /// `write`; `version` is raised to NIfTI-2 when a dimension exceeds NIfTI-1's 32767.
    /// Complex types are written with zero imaginary parts.
    public static func write<T: NIfTIStorable>(
        _ volume: Volume<T>, to path: String, datatype: NIfTIDataType, slope: Double = 1, intercept: Double = 0,
        version: NIfTIVersion = .nifti1, description: String = "qsmbench"
    ) throws(QSMError) {
        var header = try header(for: volume.grid, frames: volume.frames, datatype: datatype, slope: slope,
                                intercept: intercept, version: version, path: path)
        header.description = description
        // Encode with the scaling exactly as stored (float32 in NIfTI-1) so reading reproduces the
        // values as closely as the stored integers allow.
        let (fileSlope, fileIntercept) = (header.slope, header.intercept)
        try write(header: header, to: path) { destination in
            encode(volume.voxels, imaginary: nil, datatype: datatype, slope: fileSlope, intercept: fileIntercept,
                   into: destination)
        }
    }

    /// Writes an image keeping its header fields (data type, scaling, codes, qform and sform,
    /// description); values are re-encoded from `values` (and `imaginary`). Extensions are not kept.
    /// The file is little endian whatever the byte order it was read in.
    public static func write(_ image: NIfTIImage, to path: String) throws(QSMError) {
        var header = image.header
        try header.checkWritable(path: path)
        guard image.values.voxels.count == header.voxelCount else {
            throw .mismatch(path, "image values (\(image.values.voxels.count)) do not fill the header's \(header.shapeText)")
        }
        if let imaginary = image.imaginary, imaginary.voxels.count != image.values.voxels.count {
            throw .mismatch(path, "imaginary parts (\(imaginary.voxels.count)) do not match the real parts")
        }
        header.isLittleEndian = true
        header.voxelOffset = header.version.dataOffset
        if header.version == .nifti1 {  // float32 fields: encode with what will be stored
            header.slope = Double(Float(header.slope))
            header.intercept = Double(Float(header.intercept))
        }
        let (slope, intercept) = header.scaling ?? (1, 0)
        try write(header: header, to: path) { destination in
            encode(image.values.voxels, imaginary: image.imaginary?.voxels, datatype: header.datatype,
                   slope: slope, intercept: intercept, into: destination)
        }
    }

    /// A header for a new file on `grid` (sform = qform = the grid affine, code 1).
    static func header(
        for grid: Grid, frames: Int, datatype: NIfTIDataType, slope: Double, intercept: Double,
        version: NIfTIVersion, path: String
    ) throws(QSMError) -> NIfTIHeader {
        guard slope.isFinite, slope != 0, intercept.isFinite else {
            throw .invalidParameter("slope", "scaling slope \(slope) and intercept \(intercept) cannot be written to \(path)")
        }
        guard grid.affine.entries.allSatisfy(\.isFinite) else {
            throw .invalidFile(path, "cannot write: the affine has non-finite entries")
        }
        var header = NIfTIHeader()
        let sizes = [grid.shape.x, grid.shape.y, grid.shape.z, frames]
        header.version = sizes.contains { $0 > Int(Int16.max) } ? .nifti2 : version
        header.datatype = datatype
        header.bitsPerVoxel = datatype.byteCount * 8
        header.dim = [frames > 1 ? 4 : 3] + sizes + [1, 1, 1]
        header.voxelOffset = header.version.dataOffset
        // NIfTI-1 keeps scl_slope/scl_inter as float32.
        header.slope = header.version == .nifti1 ? Double(Float(slope)) : slope
        header.intercept = header.version == .nifti1 ? Double(Float(intercept)) : intercept
        guard header.slope.isFinite, header.slope != 0, header.intercept.isFinite else {
            throw .invalidParameter("slope", "scaling slope \(slope) and intercept \(intercept) do not fit NIfTI-1's float32 fields (\(path))")
        }
        header.units = 2 | 8  // NIFTI_UNITS_MM | NIFTI_UNITS_SEC
        header.setGeometry(grid.affine, code: 1)
        return header
    }

    /// Serialises `header`, lets `fill` encode the voxels after it (returning the index of a voxel
    /// that could not be stored, if any), compresses for `.gz`, and writes atomically.
    private static func write(
        header: NIfTIHeader, to path: String, fill: (UnsafeMutableRawBufferPointer) -> Int?
    ) throws(QSMError) {
        guard let dataBytes = header.dataByteCount else {
            throw .invalidFile(path, "cannot write: dimensions \(header.shapeText) are too large")
        }
        var bytes = header.serialized()
        let offset = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: dataBytes))
        let bad = bytes.withUnsafeMutableBytes { buffer in
            fill(UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
        }
        if let bad {
            let (slope, intercept) = header.scaling ?? (1, 0)
            throw .invalidFile(path, "cannot write: voxel \(bad) does not fit \(header.datatype) with slope \(slope), intercept \(intercept)")
        }
        if path.lowercased().hasSuffix(".gz") {
            bytes = try bytes.withRawBytes { buffer throws(QSMError) in try Gzip.compress(buffer, name: path) }
        }
        try AtomicFile.write(bytes, to: path)
    }

    // MARK: - Files

    /// The file's bytes, decompressed if gzip; with `prefix`, at most about that many bytes.
    /// Plain files come back as the `Data` read (no copy), gzip files as the inflated array.
    static func fileBytes(_ path: String, prefix: Int? = nil) throws(QSMError) -> any ContiguousBytes {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .invalidFile(path, "no such file")
        }
        guard !isDirectory.boolValue else { throw .invalidFile(path, "is a directory, not a NIfTI file") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .invalidFile(path, "cannot open for reading") }
        defer { try? handle.close() }
        let raw: Data
        do {
            let magic = try handle.read(upToCount: 2) ?? Data()
            try handle.seek(toOffset: 0)
            let gzip = magic.count == 2 && magic[magic.startIndex] == 0x1f && magic[magic.startIndex + 1] == 0x8b
            if let prefix, !gzip {
                raw = try handle.read(upToCount: prefix) ?? Data()
            } else {
                raw = try handle.readToEnd() ?? Data()
            }
        } catch {
            throw .invalidFile(path, "cannot read: \(error.localizedDescription)")
        }
        let inflated = try raw.withRawBytes { buffer throws(QSMError) -> [UInt8]? in
            Gzip.isCompressed(buffer) ? try Gzip.decompress(buffer, name: path, limit: prefix) : nil
        }
        return inflated ?? raw
    }

    /// The voxel bytes after `vox_offset`; throws if the file is shorter than the header says.
    private static func dataRegion(
        of buffer: UnsafeRawBufferPointer, header: NIfTIHeader, name: String
    ) throws(QSMError) -> UnsafeRawBufferPointer {
        let needed = header.dataByteCount!  // validated by parse
        let available = max(0, buffer.count - header.voxelOffset)
        guard available >= needed else {
            throw .invalidFile(name, "data ends early: the header describes \(header.shapeText) \(header.datatype) "
                + "(\(needed) bytes from offset \(header.voxelOffset)) but only \(available) bytes follow")
        }
        return UnsafeRawBufferPointer(rebasing: buffer[header.voxelOffset..<header.voxelOffset + needed])
    }
}

extension ContiguousBytes {
    /// `withUnsafeBytes` for a body with typed throws (the standard one only rethrows `any Error`).
    func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws(QSMError) -> R) throws(QSMError) -> R {
        let result: Result<R, QSMError> = withUnsafeBytes { buffer in
            Result { () throws(QSMError) -> R in try body(buffer) }
        }
        return try result.get()
    }
}
