// Byte layouts of the NIfTI-1 (nifti1.h, 348 bytes) and NIfTI-2 (nifti2.h, 540 bytes) headers.

/// Reads fixed-offset fields from a header buffer in the file's byte order.
private struct FieldReader {
    let bytes: UnsafeRawBufferPointer
    let swapped: Bool

    func int16(_ offset: Int) -> Int {
        let raw = bytes.loadUnaligned(fromByteOffset: offset, as: Int16.self)
        return Int(swapped ? raw.byteSwapped : raw)
    }
    func int32(_ offset: Int) -> Int {
        let raw = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
        return Int(swapped ? raw.byteSwapped : raw)
    }
    func int64(_ offset: Int) -> Int {
        let raw = bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self)
        return Int(swapped ? raw.byteSwapped : raw)
    }
    func float32(_ offset: Int) -> Double {
        let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return Double(Float(bitPattern: swapped ? raw.byteSwapped : raw))
    }
    func float64(_ offset: Int) -> Double {
        let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        return Double(bitPattern: swapped ? raw.byteSwapped : raw)
    }
    func byte(_ offset: Int) -> Int { Int(bytes[offset]) }
    /// A NUL-terminated (or full-length) text field; invalid UTF-8 is repaired.
    func text(_ offset: Int, _ length: Int) -> String {
        let field = bytes[offset..<offset + length]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }
}

/// Writes fixed-offset fields, little endian.
private struct FieldWriter {
    var bytes: [UInt8]

    mutating func int16(_ offset: Int, _ value: Int) { store(offset, Int16(truncatingIfNeeded: value).littleEndian) }
    mutating func int32(_ offset: Int, _ value: Int) { store(offset, Int32(truncatingIfNeeded: value).littleEndian) }
    mutating func int64(_ offset: Int, _ value: Int) { store(offset, Int64(value).littleEndian) }
    mutating func float32(_ offset: Int, _ value: Double) { store(offset, Float(value).bitPattern.littleEndian) }
    mutating func float64(_ offset: Int, _ value: Double) { store(offset, value.bitPattern.littleEndian) }
    mutating func byte(_ offset: Int, _ value: Int) { bytes[offset] = UInt8(truncatingIfNeeded: value) }
    /// Text truncated to `length − 1` bytes at a character boundary, NUL padded.
    mutating func text(_ offset: Int, _ length: Int, _ value: String) {
        var utf8: [UInt8] = []
        for scalar in value.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            if utf8.count + encoded.count > length - 1 { break }
            utf8 += encoded
        }
        raw(offset, utf8)
    }
    mutating func raw(_ offset: Int, _ values: [UInt8]) {
        for (i, byte) in values.enumerated() { bytes[offset + i] = byte }
    }
    private mutating func store<T: FixedWidthInteger>(_ offset: Int, _ value: T) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: T.self) }
    }
}

private let nifti1Magic: [UInt8] = Array("n+1".utf8) + [0]
private let nifti1PairMagic: [UInt8] = Array("ni1".utf8) + [0]
private let nifti2Magic: [UInt8] = Array("n+2".utf8) + [0, 0x0D, 0x0A, 0x1A, 0x0A]
private let nifti2PairMagic: [UInt8] = Array("ni2".utf8) + [0, 0x0D, 0x0A, 0x1A, 0x0A]

extension NIfTIHeader {
    /// Parses and validates a header from the start of a file's (decompressed) bytes.
    ///
    /// The version and byte order come from `sizeof_hdr` (348 or 540, either byte order). Throws
    /// `.invalidFile(name, …)` for a truncated header, wrong magic, unknown data type, dimensions
    /// outside 1…7 or not positive, non-finite or zero voxel sizes, and a bad `vox_offset`.
    static func parse(_ bytes: UnsafeRawBufferPointer, name: String) throws(QSMError) -> NIfTIHeader {
        guard bytes.count >= 4 else {
            throw .invalidFile(name, "truncated header (\(bytes.count) bytes; a NIfTI header has at least 348)")
        }
        let sizeField = bytes.loadUnaligned(as: Int32.self)
        var header = NIfTIHeader()
        let swapped: Bool
        switch (sizeField, sizeField.byteSwapped) {
        case (348, _): (header.version, swapped) = (.nifti1, false)
        case (540, _): (header.version, swapped) = (.nifti2, false)
        case (_, 348): (header.version, swapped) = (.nifti1, true)
        case (_, 540): (header.version, swapped) = (.nifti2, true)
        default:
            throw .invalidFile(name, "not a NIfTI file (sizeof_hdr is \(Int32(littleEndian: sizeField)), expected 348 or 540)")
        }
        // Host is little endian on every supported platform; `swapped` means a big-endian file.
        header.isLittleEndian = !swapped
        let size = header.version.headerSize
        guard bytes.count >= size else {
            throw .invalidFile(name, "truncated header (\(bytes.count) bytes; a NIfTI-\(header.version.rawValue) header has \(size))")
        }
        let reader = FieldReader(bytes: bytes, swapped: swapped)
        let raw: (datatypeCode: Int, voxelOffset: Double)
        if header.version == .nifti1 {
            try checkMagic(Array(bytes[344..<348]), expected: nifti1Magic, pair: nifti1PairMagic, name: name)
            raw = header.readNIfTI1(reader)
        } else {
            try checkMagic(Array(bytes[4..<12]), expected: nifti2Magic, pair: nifti2PairMagic, name: name)
            raw = header.readNIfTI2(reader)
        }
        try header.validate(datatypeCode: raw.datatypeCode, voxelOffset: raw.voxelOffset, name: name)
        return header
    }

    private static func checkMagic(_ found: [UInt8], expected: [UInt8], pair: [UInt8], name: String) throws(QSMError) {
        if found == expected { return }
        if found == pair {
            throw .invalidFile(name, "two-file NIfTI (.hdr/.img) is not supported; convert it to a single .nii")
        }
        let shown = found.prefix(4).map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
        throw .invalidFile(name, "wrong magic '\(shown)' (expected '\(String(decoding: expected.prefix(3), as: UTF8.self))')")
    }

    private mutating func readNIfTI1(_ r: FieldReader) -> (datatypeCode: Int, voxelOffset: Double) {
        var datatypeCode = 0, voxelOffsetField = 0.0
        dimensionInfo = r.byte(39)
        dim = (0..<8).map { r.int16(40 + 2 * $0) }
        intentParameters = (0..<3).map { r.float32(56 + 4 * $0) }
        intentCode = r.int16(68)
        datatypeCode = r.int16(70)
        bitsPerVoxel = r.int16(72)
        sliceStart = r.int16(74)
        pixdim = (0..<8).map { r.float32(76 + 4 * $0) }
        voxelOffsetField = r.float32(108)
        slope = r.float32(112)
        intercept = r.float32(116)
        sliceEnd = r.int16(120)
        sliceCode = r.byte(122)
        units = r.byte(123)
        calibrationMaximum = r.float32(124)
        calibrationMinimum = r.float32(128)
        sliceDuration = r.float32(132)
        timeOffset = r.float32(136)
        description = r.text(148, 80)
        auxiliaryFile = r.text(228, 24)
        qformCode = r.int16(252)
        sformCode = r.int16(254)
        quaternion = SIMD3(r.float32(256), r.float32(260), r.float32(264))
        quaternionOffset = SIMD3(r.float32(268), r.float32(272), r.float32(276))
        sformRows = (0..<12).map { r.float32(280 + 4 * $0) }
        intentName = r.text(328, 16)
        return (datatypeCode, voxelOffsetField)
    }

    private mutating func readNIfTI2(_ r: FieldReader) -> (datatypeCode: Int, voxelOffset: Double) {
        var datatypeCode = 0, voxelOffsetField = 0.0
        datatypeCode = r.int16(12)
        bitsPerVoxel = r.int16(14)
        dim = (0..<8).map { r.int64(16 + 8 * $0) }
        intentParameters = (0..<3).map { r.float64(80 + 8 * $0) }
        pixdim = (0..<8).map { r.float64(104 + 8 * $0) }
        voxelOffsetField = Double(r.int64(168))
        slope = r.float64(176)
        intercept = r.float64(184)
        calibrationMaximum = r.float64(192)
        calibrationMinimum = r.float64(200)
        sliceDuration = r.float64(208)
        timeOffset = r.float64(216)
        sliceStart = r.int64(224)
        sliceEnd = r.int64(232)
        description = r.text(240, 80)
        auxiliaryFile = r.text(320, 24)
        qformCode = r.int32(344)
        sformCode = r.int32(348)
        quaternion = SIMD3(r.float64(352), r.float64(360), r.float64(368))
        quaternionOffset = SIMD3(r.float64(376), r.float64(384), r.float64(392))
        sformRows = (0..<12).map { r.float64(400 + 8 * $0) }
        sliceCode = r.int32(496)
        units = r.int32(500)
        intentCode = r.int32(504)
        intentName = r.text(508, 16)
        dimensionInfo = r.byte(524)
        return (datatypeCode, voxelOffsetField)
    }

    /// Checks the fields whose bad values would make the data unreadable.
    private mutating func validate(datatypeCode: Int, voxelOffset voxelOffsetField: Double, name: String) throws(QSMError) {
        guard let type = NIfTIDataType(rawValue: datatypeCode) else {
            throw .invalidFile(name, "unknown or unsupported datatype code \(datatypeCode)")
        }
        datatype = type
        guard (1...7).contains(dim[0]) else {
            throw .invalidFile(name, "dim[0] is \(dim[0]); the number of dimensions must be 1–7")
        }
        for axis in 1...dim[0] where dim[axis] <= 0 {
            throw .invalidFile(name, "dim[\(axis)] is \(dim[axis]); dimensions must be positive")
        }
        guard dataByteCount != nil else {
            throw .invalidFile(name, "dimensions \(shapeText) overflow the addressable size")
        }
        for axis in 1...min(3, dim[0]) where !(pixdim[axis].isFinite && pixdim[axis] != 0) {
            throw .invalidFile(name, "pixdim[\(axis)] is \(pixdim[axis]); voxel sizes must be finite and non-zero")
        }
        let minimumOffset = version.headerSize
        guard voxelOffsetField.isFinite, voxelOffsetField >= Double(minimumOffset),
              voxelOffsetField == voxelOffsetField.rounded(), voxelOffsetField < 0x1p62 else {
            throw .invalidFile(name, "vox_offset is \(voxelOffsetField); it must be a whole number ≥ \(minimumOffset)")
        }
        voxelOffset = Int(voxelOffsetField)
        if let scaling, !scaling.intercept.isFinite {
            throw .invalidFile(name, "scl_slope is \(scaling.slope) but scl_inter is \(scaling.intercept)")
        }
    }

    /// The header bytes followed by a zero extension flag (`version.dataOffset` bytes), little endian.
    func serialized() -> [UInt8] {
        var w = FieldWriter(bytes: [UInt8](repeating: 0, count: version.dataOffset))
        if version == .nifti1 {
            w.int32(0, 348)
            w.byte(38, Int(UInt8(ascii: "r")))  // `regular`, as nibabel writes it
            w.byte(39, dimensionInfo)
            for i in 0..<8 { w.int16(40 + 2 * i, dim[i]) }
            for i in 0..<3 { w.float32(56 + 4 * i, intentParameters[i]) }
            w.int16(68, intentCode)
            w.int16(70, datatype.rawValue)
            w.int16(72, datatype.byteCount * 8)
            w.int16(74, sliceStart)
            for i in 0..<8 { w.float32(76 + 4 * i, pixdim[i]) }
            w.float32(108, Double(version.dataOffset))
            w.float32(112, slope)
            w.float32(116, intercept)
            w.int16(120, sliceEnd)
            w.byte(122, sliceCode)
            w.byte(123, units)
            w.float32(124, calibrationMaximum)
            w.float32(128, calibrationMinimum)
            w.float32(132, sliceDuration)
            w.float32(136, timeOffset)
            w.text(148, 80, description)
            w.text(228, 24, auxiliaryFile)
            w.int16(252, qformCode)
            w.int16(254, sformCode)
            for i in 0..<3 { w.float32(256 + 4 * i, quaternion[i]) }
            for i in 0..<3 { w.float32(268 + 4 * i, quaternionOffset[i]) }
            for i in 0..<12 { w.float32(280 + 4 * i, sformRows[i]) }
            w.text(328, 16, intentName)
            w.raw(344, nifti1Magic)
        } else {
            w.int32(0, 540)
            w.raw(4, nifti2Magic)
            w.int16(12, datatype.rawValue)
            w.int16(14, datatype.byteCount * 8)
            for i in 0..<8 { w.int64(16 + 8 * i, dim[i]) }
            for i in 0..<3 { w.float64(80 + 8 * i, intentParameters[i]) }
            for i in 0..<8 { w.float64(104 + 8 * i, pixdim[i]) }
            w.int64(168, version.dataOffset)
            w.float64(176, slope)
            w.float64(184, intercept)
            w.float64(192, calibrationMaximum)
            w.float64(200, calibrationMinimum)
            w.float64(208, sliceDuration)
            w.float64(216, timeOffset)
            w.int64(224, sliceStart)
            w.int64(232, sliceEnd)
            w.text(240, 80, description)
            w.text(320, 24, auxiliaryFile)
            w.int32(344, qformCode)
            w.int32(348, sformCode)
            for i in 0..<3 { w.float64(352 + 8 * i, quaternion[i]) }
            for i in 0..<3 { w.float64(376 + 8 * i, quaternionOffset[i]) }
            for i in 0..<12 { w.float64(400 + 8 * i, sformRows[i]) }
            w.int32(496, sliceCode)
            w.int32(500, units)
            w.int32(504, intentCode)
            w.text(508, 16, intentName)
            w.byte(524, dimensionInfo)
        }
        return w.bytes
    }
}
