import Foundation
import QSMIO
import Testing

/// write → read recovers values, geometry and header fields exactly (or to storage precision).
@Suite struct NIfTIRoundTripTests {
    static let shape = SIMD3(6, 5, 4)

    /// Values every type below can hold exactly: small integers with both signs where allowed.
    static func values(for type: NIfTIDataType, count: Int) -> [Double] {
        let signed: Bool = switch type {
        case .uint8, .uint16, .uint32, .uint64: false
        default: true
        }
        return (0..<count).map { i in
            let v = Double((i * 37) % 101)
            return type.isInteger ? (signed ? v - 50 : v) : (v - 50) * 0.375
        }
    }

    static let realTypes: [NIfTIDataType] = NIfTIDataType.allCases.filter { !$0.isComplex }

    @Test(arguments: realTypes, [false, true])
    func everyTypeRoundTripsInBothVersions(type: NIfTIDataType, gzip: Bool) throws {
        let scratch = NIfTIScratch()
        let affine = nifTITestAffine(axis: SIMD3(1, 2, 3), degrees: 20, zooms: SIMD3(1, 1.5, 2), offset: SIMD3(-10, 20, 30))
        let grid = Grid(shape: Self.shape, voxelSize: SIMD3(1, 1.5, 2), affine: affine)
        let expected = Self.values(for: type, count: grid.count)
        let volume = try Volume(grid: grid, voxels: expected)
        for version in NIfTIVersion.allCases {
            let path = scratch.path("image-\(type)-v\(version.rawValue).nii" + (gzip ? ".gz" : ""))
            try NIfTI.write(volume, to: path, datatype: type, version: version)
            let bytes = nifTIBytes(path)
            #expect((bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) == gzip)
            let image = try NIfTI.read(path)
            #expect(image.header.datatype == type)
            #expect(image.header.version == version)
            #expect(image.header.shape == Self.shape && image.header.frames == 1)
            // Every value is an exactly representable small number: exact equality.
            #expect(image.values.voxels == expected)
            #expect(image.imaginary == nil)
            let floats = try NIfTI.readVolume(path)
            #expect(floats.voxels == expected.map { Float($0) })
            #expect(floats.grid.shape == Self.shape)
            // sform is float32 in NIfTI-1 (relative rounding 6e-8 of entries ≤ 30 → < 4e-6).
            let tolerance = version == .nifti1 ? 4e-6 : 1e-12
            #expect(largestEntryDifference(floats.grid.affine, affine) < tolerance)
            #expect(abs(floats.grid.voxelSize.y - 1.5) < 1e-6)
        }
    }

    @Test func float32WriterSetsScannerCodesUnitsAndDescription() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(4, 3, 2), voxelSize: SIMD3(0.5, 0.5, 1))
        let volume = try Volume(grid: grid, voxels: (0..<grid.count).map { Float($0) * 0.1 })
        let path = scratch.path("chi.nii.gz")
        try NIfTI.write(volume, to: path, description: "susceptibility (ppm)")
        let header = try NIfTI.readHeader(path)
        #expect(header.datatype == .float32 && header.bitsPerVoxel == 32)
        #expect(header.sformCode == 1 && header.qformCode == 1)
        #expect(header.units == 10)  // NIFTI_UNITS_MM (2) | NIFTI_UNITS_SEC (8)
        #expect(header.description == "susceptibility (ppm)")
        #expect(header.version == .nifti1 && header.voxelOffset == 352)
        #expect(header.scaling == nil)
        let back = try NIfTI.readVolume(path)
        #expect(back.voxels == volume.voxels)  // float32 stored bit for bit
        #expect(back.grid.voxelSize == SIMD3(0.5, 0.5, 1))
    }

    @Test func fourDimensionalVolumesKeepTheirFrames() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(3, 4, 5), voxelSize: SIMD3(1, 1, 1))
        let volume = try Volume(grid: grid, frames: 3, voxels: (0..<grid.count * 3).map { Float($0) - 20 })
        for name in ["echoes.nii", "echoes.nii.gz"] {
            try NIfTI.write(volume, to: scratch.path(name))
            let header = try NIfTI.readHeader(scratch.path(name))
            #expect(header.dim[0] == 4 && header.dim[4] == 3 && header.frames == 3)
            let back = try NIfTI.readVolume(scratch.path(name))
            #expect(back.frames == 3 && back.voxels == volume.voxels)
            #expect(back.frame(2).voxels == volume.frame(2).voxels)
        }
    }

    @Test func integerScalingIsAppliedOnReadAndInvertedOnWrite() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(4, 4, 4))
        // Phase in radians stored as int16 with slope π/4096 (a scanner-like scaling).
        let slope = Double.pi / 4096, intercept = -0.5
        let stored = (0..<grid.count).map { Double(($0 * 131) % 8192 - 4096) }
        let phase = stored.map { $0 * slope + intercept }
        try NIfTI.write(try Volume(grid: grid, voxels: phase), to: scratch.path("phase.nii"),
                        datatype: .int16, slope: slope, intercept: intercept)
        let image = try NIfTI.read(scratch.path("phase.nii"))
        // NIfTI-1 keeps slope and intercept as float32: expected values use the stored float32
        // scaling and the exact stored integers, so they agree to double rounding (1e-12).
        let fileSlope = Double(Float(slope)), fileIntercept = Double(Float(intercept))
        #expect(image.header.slope == fileSlope && image.header.intercept == fileIntercept)
        for (value, raw) in zip(image.values.voxels, stored) {
            #expect(abs(value - (raw * fileSlope + fileIntercept)) < 1e-12)
        }
        // Writing again with the header's own scaling recovers the same integers.
        try NIfTI.write(image, to: scratch.path("again.nii.gz"))
        let again = try NIfTI.read(scratch.path("again.nii.gz"))
        #expect(again.values.voxels == image.values.voxels)
        #expect(again.header.slope == fileSlope)
    }

    @Test func masksAndLabelsWriteAsUInt8() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(5, 5, 5))
        let mask = try Mask(grid: grid, voxels: (0..<grid.count).map { $0 % 3 == 0 })
        try NIfTI.write(mask, to: scratch.path("mask.nii.gz"), datatype: .uint8)
        let back = try NIfTI.read(scratch.path("mask.nii.gz"))
        #expect(back.header.datatype == .uint8)
        #expect(back.values.voxels == (0..<grid.count).map { $0 % 3 == 0 ? 1 : 0 })
    }

    @Test func valuesThatDoNotFitTheTypeAreRefused() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(2, 2, 2))
        let tooLarge = try Volume(grid: grid, voxels: [Double](repeating: 1, count: 7) + [300])
        #expect(throws: QSMError.self) {
            try NIfTI.write(tooLarge, to: scratch.path("labels.nii"), datatype: .uint8)
        }
        let notANumber = try Volume(grid: grid, voxels: [Double](repeating: .nan, count: 8))
        #expect(throws: QSMError.self) {
            try NIfTI.write(notANumber, to: scratch.path("labels.nii"), datatype: .int16)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("labels.nii")))  // nothing partial
    }

    /// NIfTI-1 dimensions are int16: a longer axis switches to NIfTI-2 (the image writer refuses).
    @Test func longAxesUseNIfTI2() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(40_000, 1, 2))
        let volume = try Volume(grid: grid, voxels: (0..<grid.count).map { Float($0 % 1000) })
        try NIfTI.write(volume, to: scratch.path("long.nii.gz"))
        let image = try NIfTI.read(scratch.path("long.nii.gz"))
        #expect(image.header.version == .nifti2 && image.header.dim[1] == 40_000)
        #expect(image.values.voxels == volume.voxels.map(Double.init))
        var forced = image
        forced.header.version = .nifti1
        #expect(throws: QSMError.self) { try NIfTI.write(forced, to: scratch.path("long1.nii")) }
    }

    @Test func handEditedHeadersAreCheckedBeforeWriting() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(2, 2, 2))
        var header = NIfTIHeader()
        header.dim = [3, 2, 2]  // too short
        let image = NIfTIImage(header: header, values: Volume(grid: grid, repeating: 0))
        #expect(throws: QSMError.self) { try NIfTI.write(image, to: scratch.path("bad.nii")) }
        var negative = image
        negative.header.dim = [3, 2, -2, 2, 1, 1, 1, 1]
        #expect(throws: QSMError.self) { try NIfTI.write(negative, to: scratch.path("bad.nii")) }
        var mismatched = image
        mismatched.header.dim = [3, 2, 2, 3, 1, 1, 1, 1]  // 12 voxels described, 8 given
        #expect(throws: QSMError.self) { try NIfTI.write(mismatched, to: scratch.path("bad.nii")) }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("bad.nii")))
    }

    @Test func complexImagesRoundTripThroughTheImageWriter() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(3, 3, 2))
        var header = NIfTIHeader()
        header.datatype = .complex64
        header.bitsPerVoxel = 64
        header.dim = [3, 3, 3, 2, 1, 1, 1, 1]
        let real = (0..<grid.count).map { Double($0) * 0.5 }
        let imaginary = (0..<grid.count).map { -Double($0) * 0.25 }
        let image = NIfTIImage(header: header, values: try Volume(grid: grid, voxels: real),
                               imaginary: try Volume(grid: grid, voxels: imaginary))
        for version in NIfTIVersion.allCases {
            var versioned = image
            versioned.header.version = version
            try NIfTI.write(versioned, to: scratch.path("complex.nii"))
            let back = try NIfTI.read(scratch.path("complex.nii"))
            #expect(back.header.datatype == .complex64 && back.header.version == version)
            #expect(back.values.voxels == real)
            #expect(back.imaginary?.voxels == imaginary)
            #expect(throws: QSMError.self) { try NIfTI.readVolume(scratch.path("complex.nii")) }
        }
    }

    /// An eighth of a 1 mm head scan (128×128×88 float32, 5.8 MB) through .nii.gz; the full
    /// 256×256×176 took 0.8 s to write and 0.3 s to read on the shared 2-core build machine.
    @Test func gzipRoundTripIsFast() throws {
        let scratch = NIfTIScratch()
        let grid = Grid(shape: SIMD3(128, 128, 88))
        var generator = SeededGenerator(seed: 7)
        let voxels = (0..<grid.count).map { i in Float(i % 256) * 0.01 + Float(generator.next() % 1000) * 1e-5 }
        let volume = try Volume(grid: grid, voxels: voxels)
        let path = scratch.path("head.nii.gz")
        let start = Date()
        try NIfTI.write(volume, to: path)
        let written = Date()
        let back = try NIfTI.readVolume(path)
        let read = Date()
        #expect(back.voxels == voxels)
        let writeSeconds = written.timeIntervalSince(start), readSeconds = read.timeIntervalSince(written)
        print("NIfTI 128×128×88 float32 .nii.gz: write \(writeSeconds) s, read \(readSeconds) s")
        // Generous bound for a loaded shared 2-core machine (measured ~0.15 s in total).
        #expect(writeSeconds + readSeconds < 2)
    }
}
