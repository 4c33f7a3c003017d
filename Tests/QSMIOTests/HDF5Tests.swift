import Foundation
import QSMIO
import QSMTestSupport
import Testing

/// HDF5 files, groups, datasets and attributes: round trips, compression, errors, peer readers.
@Suite struct HDF5Tests {
    // MARK: - Datasets

    @Test func numericDatasetsRoundTripInEveryType() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("numbers.h5")
        var generator = SeededGenerator(seed: 11)
        let shape = [3, 4, 5]
        let floats = (0..<60).map { _ in Float.random(in: -1e3...1e3, using: &generator) }
        let doubles = (0..<60).map { _ in Double.random(in: -1e300...1e300, using: &generator) }
        let int32s = (0..<60).map { _ in Int32.random(in: .min ... .max, using: &generator) }
        let int64s = (0..<60).map { _ in Int64.random(in: .min ... .max, using: &generator) }
        let bytes = (0..<60).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        do {
            let file = try HDF5File.create(path)
            try file.writeDataset("f32", values: floats, shape: shape)
            try file.writeDataset("f64", values: doubles, shape: shape)
            try file.writeDataset("i32", values: int32s, shape: shape, options: .contiguous)
            try file.writeDataset("deep/group/i64", values: int64s, shape: shape)
            try file.writeDataset("u8", values: bytes, shape: shape)
            try file.writeDataset("scalar", values: [Double.pi], shape: [])
            try file.writeDataset("empty", values: [Float](), shape: [0, 4])
            try file.close()
        }
        let file = try HDF5File.open(path)
        // Exact equality: no conversion happens when the memory type matches the stored type.
        #expect(try file.dataset("f32").read(as: Float.self) == floats)
        #expect(try file.dataset("f64").read(as: Double.self) == doubles)
        #expect(try file.dataset("i32").read(as: Int32.self) == int32s)
        #expect(try file.dataset("/deep/group/i64").read(as: Int64.self) == int64s)
        #expect(try file.dataset("u8").read(as: UInt8.self) == bytes)
        #expect(try file.dataset("scalar").read(as: Double.self) == [Double.pi])
        #expect(try file.dataset("empty").read(as: Float.self) == [])
        #expect(try file.dataset("f32").shape == shape)
        #expect(try file.dataset("scalar").shape == [])
        #expect(try file.dataset("empty").shape == [0, 4])
        #expect(try file.dataset("f32").elementType == .float(bits: 32))
        #expect(try file.dataset("f64").elementType == .float(bits: 64))
        #expect(try file.dataset("i32").elementType == .integer(bits: 32, signed: true))
        #expect(try file.dataset("deep/group/i64").elementType == .integer(bits: 64, signed: true))
        #expect(try file.dataset("u8").elementType == .integer(bits: 8, signed: false))
    }

    @Test func stringDatasetsRoundTripAsUTF8() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("strings.h5")
        let labels = ["background", "χ > 0.1 ppm", "", "caudate \"nucleus\"", "line\nbreak", "putamen"]
        do {
            let file = try HDF5File.create(path)
            try file.writeDataset("labels", values: labels)
            try file.writeDataset("grid", values: labels, shape: [2, 3])
            try file.close()
        }
        let file = try HDF5File.open(path)
        #expect(try file.dataset("labels").readStrings() == labels)
        #expect(try file.dataset("grid").readStrings() == labels)
        #expect(try file.dataset("grid").shape == [2, 3])
        #expect(try file.dataset("labels").elementType == .string)
        #expect(throws: QSMError.self) { try file.dataset("labels").read(as: Float.self) }
    }

    @Test func numericReadsConvertButRefuseValuesThatDoNotFit() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("convert.h5")
        do {
            let file = try HDF5File.create(path)
            try file.writeDataset("int32", values: [Int32(-7), 0, 2_000_000_000], shape: [3])
            try file.writeDataset("huge", values: [1.0, 1e300], shape: [2])
            try file.writeDataset("wide", values: [Int64(1), Int64(1) << 40], shape: [2])
            try file.writeDataset("fraction", values: [Float(2.5)], shape: [1])
            try file.close()
        }
        let file = try HDF5File.open(path)
        // Every int32 is exactly representable as a double.
        #expect(try file.dataset("int32").read(as: Double.self) == [-7, 0, 2_000_000_000])
        let huge = #expect(throws: QSMError.self) { _ = try file.dataset("huge").read(as: Float.self) }
        let wide = #expect(throws: QSMError.self) { _ = try file.dataset("wide").read(as: Int32.self) }
        let fraction = #expect(throws: QSMError.self) { _ = try file.dataset("fraction").read(as: Int32.self) }
        for (name, error) in [("huge", huge), ("wide", wide), ("fraction", fraction)] {
            #expect(error?.description.hasPrefix("\(path): /\(name): cannot read as") == true,
                    "\(String(describing: error))")
        }
    }

    @Test func shuffleAndDeflateAreAppliedAndShrinkCompressibleData() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("compressed.h5")
        // A smooth, slowly varying field: the high bytes repeat, so shuffle + deflate shrink it.
        let shape = [32, 32, 32]
        let values = (0..<32 * 32 * 32).map { (index: Int) -> Float in Float((index / 1024) % 8) * 0.25 }
        let rawBytes = values.count * MemoryLayout<Float>.size
        do {
            let file = try HDF5File.create(path)
            try file.writeDataset("compressed", values: values, shape: shape)
            try file.writeDataset("plain", values: values, shape: shape, options: .contiguous)
            try file.writeDataset("custom", values: values, shape: shape,
                                  options: HDF5DatasetOptions(chunkShape: [8, 16, 32], deflateLevel: 9, shuffle: false))
            try file.close()
        }
        let file = try HDF5File.open(path)
        let compressed = try file.dataset("compressed")
        #expect(try compressed.storageOptions() == HDF5DatasetOptions(chunkShape: shape, deflateLevel: 4, shuffle: true))
        // 8 distinct values in runs of 1024: deflate alone gives > 100×; 10× is a loose floor.
        #expect(compressed.storageSize * 10 < rawBytes)
        let plain = try file.dataset("plain")
        #expect(try plain.storageOptions() == .contiguous)
        #expect(plain.storageSize == rawBytes)
        let custom = try file.dataset("custom")
        #expect(try custom.storageOptions() == HDF5DatasetOptions(chunkShape: [8, 16, 32], deflateLevel: 9, shuffle: false))
        for name in ["compressed", "plain", "custom"] {
            #expect(try file.dataset(name).read(as: Float.self) == values)
        }
    }

    @Test func automaticChunksStayUnderOneMebibyte() throws {
        let directory = try HDF5Scratch()
        let file = try HDF5File.create(directory.file("chunks.h5"))
        let shape = [40, 96, 112]   // 1.7 MB of float32: must be split
        let dataset = try file.writeDataset("volume", values: [Float](repeating: 1, count: 40 * 96 * 112), shape: shape)
        let chunk = try #require(try dataset.storageOptions().chunkShape)
        let chunkBytes = chunk.reduce(4, *)
        // Halving one dimension at most halves the chunk, so it ends in (512 KiB, 1 MiB].
        #expect(chunkBytes <= 1 << 20 && chunkBytes > 1 << 19)
        #expect(zip(chunk, shape).allSatisfy { $0 >= 1 && $0 <= $1 })
        try file.close()
    }

    @Test func badWritesAreRefusedWithTheObjectPath() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("bad.h5")
        let file = try HDF5File.create(path)
        try file.writeDataset("data", values: [Float(1), 2], shape: [2])
        let cases: [(String, () throws -> Void)] = [
            ("/short: 3 values do not fill shape [2, 2]",
             { try file.writeDataset("short", values: [Float(1), 2, 3], shape: [2, 2]) }),
            ("/data: already exists", { try file.writeDataset("data", values: [Float(1)], shape: [1]) }),
            ("/level: deflate level 12 is outside 0–9",
             { try file.writeDataset("level", values: [Float(1)], shape: [1],
                                     options: HDF5DatasetOptions(deflateLevel: 12)) }),
            ("/chunk: chunk shape [4] does not fit dataset shape [2]",
             { try file.writeDataset("chunk", values: [Float(1), 2], shape: [2],
                                     options: HDF5DatasetOptions(chunkShape: [4])) }),
            ("/data: is a dataset, not a group", { _ = try file.group("data") }),
            ("/data/sub: cannot create the group", { try file.createGroup("data/sub") }),
            ("/missing: no such dataset", { _ = try file.dataset("missing") }),
        ]
        for (expected, action) in cases {
            let error = #expect(throws: QSMError.self) { try action() }
            #expect(error?.description.hasPrefix("\(path): \(expected)") == true, "\(String(describing: error))")
        }
        try file.close()
        let error = #expect(throws: QSMError.self) { _ = try file.dataset("data") }
        #expect(error == .invalidFile(path, "/data: the file is already closed"))
        let readOnly = try HDF5File.open(path)
        let refused = #expect(throws: QSMError.self) { try readOnly.root.setAttribute("x", value: 1) }
        #expect(refused == .invalidFile(path, "/: the file is open read-only"))
    }

    // MARK: - Groups and attributes

    @Test func attributesOfEveryKindRoundTripOnGroupsAndDatasets() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("attributes.h5")
        let values: [String: HDF5Value] = [
            "threshold": .double(0.15),
            "tiny": .double(-1e-300),
            "gamma": .double(42.5775e6),
            "seed": .integer(Int.min),
            "count": .integer(Int.max),
            "method": .string("tkd"),
            "unicode": .string("χ in ppm, B₀ = 3 T"),
            "empty_text": .string(""),
            "voxel_size": .doubles([1, 1, 2.5]),
            "shape": .integers([64, 64, 48]),
            "nothing": .doubles([]),
            "names": .strings(["a", "β", ""]),
        ]
        do {
            let file = try HDF5File.create(path)
            let group = try file.createGroup("runs/tkd")
            let dataset = try file.writeDataset("runs/tkd/chi", values: [Float](repeating: 0, count: 8), shape: [2, 2, 2])
            for (name, value) in values {
                try group.setAttribute(name, value: value)
                try dataset.setAttribute(name, value: value)
            }
            // The typed overloads and replacing an attribute (with a different type).
            try group.setAttribute("replaced", value: 1)
            try group.setAttribute("replaced", value: "now a string")
            try dataset.setAttribute("typed_double", value: 2.5)
            try dataset.setAttribute("typed_int", value: 3)
            try dataset.setAttribute("typed_doubles", value: [0.5, 0.25])
            try dataset.setAttribute("typed_ints", value: [-1, 1])
            try dataset.setAttribute("typed_string", value: "x")
            try file.close()
        }
        let file = try HDF5File.open(path)
        var expectedGroup = values
        expectedGroup["replaced"] = .string("now a string")
        #expect(try file.group("runs/tkd").attributes() == expectedGroup)
        var expectedDataset = values
        expectedDataset["typed_double"] = .double(2.5)
        expectedDataset["typed_int"] = .integer(3)
        expectedDataset["typed_doubles"] = .doubles([0.5, 0.25])
        expectedDataset["typed_ints"] = .integers([-1, 1])
        expectedDataset["typed_string"] = .string("x")
        #expect(try file.dataset("runs/tkd/chi").attributes() == expectedDataset)
        #expect(try file.group("runs/tkd").attributeNames() == expectedGroup.keys.sorted())
        let missing = #expect(throws: QSMError.self) { _ = try file.root.attribute("absent") }
        #expect(missing?.description.hasPrefix("\(path): /@absent: no such attribute") == true)
    }

    @Test func groupsNestListAndReportExistence() throws {
        let directory = try HDF5Scratch()
        let file = try HDF5File.create(directory.file("groups.h5"))
        let deep = try file.createGroup("a/b/c")
        #expect(deep.path == "/a/b/c")
        #expect(try file.createGroup("/a/b/c/").path == "/a/b/c")   // idempotent, path normalised
        try file.writeDataset("a/data", values: [Int32(1)], shape: [1])
        try file.createGroup("a/another")
        #expect(try file.children(of: "a") == [
            HDF5Child(name: "another", kind: .group), HDF5Child(name: "b", kind: .group),
            HDF5Child(name: "data", kind: .dataset),
        ])
        #expect(try file.root.children() == [HDF5Child(name: "a", kind: .group)])
        #expect(file.exists("/") && file.exists("a/b/c") && file.exists("/a/data"))
        #expect(!file.exists("a/x") && !file.exists("x/y/z") && !file.exists("a/data/z"))
        try file.writeDataset("a/b/c/deep", values: [1.0], shape: [1])
        try file.writeDataset("top", values: [1.0], shape: [1])
        #expect(try file.datasetPaths() == ["/top", "/a/data", "/a/b/c/deep"])
        try file.close()
    }

    @Test func describeTreeListsGroupsDatasetsAndAttributes() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("tree.h5")
        do {
            let file = try HDF5File.create(path)
            try file.root.setAttribute("title", value: "demo")
            let data = try file.writeDataset("data", values: [Float](repeating: 0, count: 6), shape: [2, 3],
                                             options: .contiguous)
            try data.setAttribute("units", value: "ppm")
            try file.createGroup("runs/tkd").setAttribute("threshold", value: 0.15)
            try file.writeDataset("runs/labels", values: ["a"])
            try file.close()
        }
        // Contiguous storage is exactly the raw size, so the listing is fully predictable;
        // a variable-length string occupies a 16-byte heap reference.
        let expected = """
            /
              @title = "demo"  (string)
              data  float32 (2, 3), 24 bytes
                @units = "ppm"  (string)
              runs/
                labels  string (1), 16 bytes
                tkd/
                  @threshold = 0.15  (float64)

            """
        #expect(try HDF5File.open(path).describeTree() == expected)
    }

    // MARK: - Volumes

    @Test(arguments: [1, 3])
    func volumesRoundTripWithTheirGeometry(frames: Int) throws {
        let directory = try HDF5Scratch()
        let path = directory.file("volume.h5")
        // An oblique affine (rotation about z by 30°, then anisotropic voxels) with an offset.
        let c = cos(Double.pi / 6), s = sin(Double.pi / 6)
        let affine = Affine(rowMajor: [c * 0.8, -s * 0.9, 0, -12.5, s * 0.8, c * 0.9, 0, 3.25, 0, 0, 1.5, 40, 0, 0, 0, 1])
        let grid = Grid(shape: SIMD3(5, 4, 3), voxelSize: SIMD3(0.8, 0.9, 1.5), affine: affine)
        var generator = SeededGenerator(seed: 3)
        let voxels = (0..<grid.count * frames).map { _ in Float.random(in: -0.2...0.2, using: &generator) }
        let volume = try Volume(grid: grid, frames: frames, voxels: voxels)
        do {
            let file = try HDF5File.create(path)
            let dataset = try file.writeVolume(volume, to: "chi")
            #expect(dataset.shape == (frames > 1 ? [frames, 3, 4, 5] : [3, 4, 5]))
            try file.close()
        }
        let file = try HDF5File.open(path)
        let read: Volume<Float> = try file.readVolume("chi")
        #expect(read.grid == grid)
        #expect(read.frames == frames)
        #expect(read.voxels == voxels)
        // x varies fastest: voxel (x=4, y=0, z=0) is element 4 of the stored C-order array.
        #expect(read[4, 0, 0] == voxels[4])
        #expect(try file.dataset("chi").attribute("affine") == .doubles(affine.entries))
        #expect(try file.dataset("chi").attribute("axes") == .string(frames > 1 ? "frame,z,y,x" : "z,y,x"))
    }

    @Test func volumesWithoutGeometryAreRejected() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("bare.h5")
        let file = try HDF5File.create(path)
        try file.writeDataset("bare", values: [Float](repeating: 0, count: 8), shape: [2, 2, 2])
        try file.writeDataset("flat", values: [Float](repeating: 0, count: 8), shape: [8])
        let bare = #expect(throws: QSMError.self) { _ = try file.readVolume("bare", as: Float.self) }
        #expect(bare == .invalidFile(path, "/bare: has no voxel_size or affine attribute, so its geometry is unknown"))
        let flat = #expect(throws: QSMError.self) { _ = try file.readVolume("flat", as: Float.self) }
        #expect(flat?.description.hasPrefix("\(path): /flat: has 1 dimensions") == true)
        try file.close()
    }

    // MARK: - Atomic creation

    @Test func atomicFilesAppearOnlyWhenClosed() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("results.h5")
        // Temporary names are unique per write: look for any partial file beside the target.
        func partials() -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.file(""))) ?? []
            return names.filter { $0.contains(".partial-") }
        }
        do {
            let file = try HDF5File.create(path, atomic: true)
            try file.writeDataset("x", values: [1.0], shape: [1])
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(partials().count == 1 && partials().first?.hasPrefix(".results.h5.partial-") == true)
            try file.close()
        }
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(partials().isEmpty)
        #expect(try HDF5File.open(path).dataset("x").read(as: Double.self) == [1.0])

        // An atomic file that is never closed (an error mid-way) disappears and leaves `path` alone.
        let abandoned = directory.file("abandoned.h5")
        do {
            let file = try HDF5File.create(abandoned, atomic: true)
            try file.writeDataset("x", values: [1.0], shape: [1])
        }
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(partials().isEmpty)
    }

    @Test(.enabled(if: ExternalTool.path("h5dump") != nil, "h5dump (hdf5-tools) is not installed"))
    func closeReleasesTheFileEvenWhileDatasetsAreStillReferenced() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("held.h5")
        let file = try HDF5File.create(path, atomic: true)
        var dataset: HDF5Dataset? = try file.writeDataset("x", values: [Float(1.5), 2.5], shape: [2])
        try file.close()
        // Another process can open and read the finished file while `dataset` is alive: the
        // HDF5 file (and its write lock) is really closed, not waiting for the dataset.
        let output = try ExternalTool.run(ExternalTool.path("h5dump")!, ["-d", "/x", path])
        #expect(output.contains("(0): 1.5, 2.5"), "\(output)")
        let error = #expect(throws: QSMError.self) { _ = try dataset?.read(as: Float.self) }
        #expect(error == .invalidFile(path, "/x: the file is already closed"))
        // Releasing the dataset afterwards must not close its (already closed) id again.
        let (_, printed) = try StandardErrorCapture.run { dataset = nil }
        #expect(!printed.contains("HDF5-DIAG"), "\(printed)")
    }

    // MARK: - Unusable files

    @Test func unusableFilesGiveOneLineErrorsAndHDF5PrintsNothing() throws {
        let directory = try HDF5Scratch()
        let garbage = directory.file("garbage.h5")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: garbage))
        let valid = directory.file("valid.h5")
        do {
            let file = try HDF5File.create(valid)
            try file.writeDataset("data", values: [Float](repeating: 1.5, count: 4096), shape: [4096], options: .contiguous)
            try file.close()
        }
        let truncated = directory.file("truncated.h5")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: valid))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        let missing = directory.file("missing.h5")
        let cases: [(path: String, problem: String)] = [
            (missing, "no such file"),
            (directory.path, "is a directory"),
            (garbage, "not an HDF5 file"),
            (truncated, "truncated HDF5 file (HDF5: truncated file: eof = "),
        ]
        for (path, problem) in cases {
            // A fresh thread: HDF5's error printing is a per-thread setting in thread-safe builds.
            let (error, printed) = try StandardErrorCapture.run {
                FileHandle.standardError.write(Data("capture-marker\n".utf8))
                return onNewThread { () -> QSMError? in
                    do throws(QSMError) { _ = try HDF5File.open(path); return nil } catch { return error }
                }
            }
            let thrown = try #require(error, "opening \(path) did not fail")
            guard case let .invalidFile(subject, message) = thrown else {
                Issue.record("\(thrown) is not an invalid-file error")
                continue
            }
            #expect(subject == path)
            #expect(message.hasPrefix(problem), "\(message)")
            #expect(!thrown.description.contains("\n"))
            // The marker proves the capture works, so an absent diagnostic means none was printed.
            #expect(printed.contains("capture-marker"))
            #expect(!printed.contains("HDF5-DIAG"), "\(printed)")
        }
    }

    @Test func creatingInAMissingDirectoryNamesTheFileAndTheReason() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("absent/results.h5")
        for atomic in [false, true] {
            let error = #expect(throws: QSMError.self) { _ = try HDF5File.create(path, atomic: atomic) }
            #expect(error == .invalidFile(path, "cannot create: No such file or directory"))
        }
    }

    @Test func corruptMetadataIsReportedWhenOpenedOrRead() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("corrupt.h5")
        do {
            let file = try HDF5File.create(path)
            try file.createGroup("runs/tkd").setAttribute("threshold", value: 0.15)
            try file.writeDataset("runs/tkd/chi", values: [Float](repeating: 1, count: 64), shape: [4, 4, 4])
            try file.close()
        }
        // Overwrite everything after the superblock (object headers, B-trees, heaps): wherever
        // HDF5 notices first, at open or while walking the tree, it must be a QSMError for the file.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for index in 96..<bytes.count { bytes[index] = 0xAB }
        try bytes.write(to: URL(fileURLWithPath: path))
        let (error, printed) = try StandardErrorCapture.run { () -> QSMError? in
            do throws(QSMError) {
                let file = try HDF5File.open(path)
                _ = try file.describeTree()
                _ = try file.dataset("runs/tkd/chi").read(as: Float.self)
                return nil
            } catch { return error }
        }
        let thrown = try #require(error, "a file with its metadata overwritten was read without error")
        #expect(thrown.description.hasPrefix("\(path): "))
        #expect(!printed.contains("HDF5-DIAG"))
    }

    // MARK: - Peer readers

    @Test(.enabled(if: ExternalTool.path("h5dump") != nil, "h5dump (hdf5-tools) is not installed"))
    func h5dumpReadsDatasetsFiltersAndAttributes() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("peer.h5")
        try writePeerFile(path)
        // h5dump prints non-ASCII bytes as octal escapes, so "χ" is checked by the h5py test instead.
        let output = try ExternalTool.run(ExternalTool.path("h5dump")!, ["-p", path])
        for expected in [
            "GROUP \"runs\"", "DATASET \"chi\"", "H5T_IEEE_F32LE", "DATASPACE  SIMPLE { ( 2, 3 ) / ( 2, 3 ) }",
            "PREPROCESSING SHUFFLE", "COMPRESSION DEFLATE { LEVEL 4 }",
            "ATTRIBUTE \"method\"", "STRSIZE H5T_VARIABLE", "CSET H5T_CSET_UTF8", "(0): \"tkd\"",
            "ATTRIBUTE \"threshold\"", "(0): 0.15", "ATTRIBUTE \"shape\"", "(0): 64, 64, 48",
            "(0,0): 0.5, -1.25, 3,", "(1,0): 4, 5.5, -6", "DATASET \"labels\"", "\"ppm\"",
        ] {
            #expect(output.contains(expected), "h5dump output lacks \(expected)")
        }
    }

    @Test(.enabled(if: ExternalTool.pythonHasH5py, "python3 with h5py is not available"))
    func h5pyReadsValuesAndStrings() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("peer.h5")
        try writePeerFile(path)
        let script = """
            import json, sys, h5py
            with h5py.File(sys.argv[1], "r") as f:
                chi = f["runs/chi"]
                print(json.dumps({
                    "chi": chi[()].tolist(), "dtype": str(chi.dtype),
                    "compression": chi.compression, "shuffle": chi.shuffle,
                    "method": f["runs"].attrs["method"], "method_is_str": isinstance(f["runs"].attrs["method"], str),
                    "threshold": float(f["runs"].attrs["threshold"]),
                    "shape": [int(v) for v in f["runs/chi"].attrs["shape"]],
                    "labels": [s.decode() if isinstance(s, bytes) else s for s in f["runs/labels"][()]],
                    "labels_as_str": list(f["runs/labels"].asstr()[()]),
                }))
            """
        let output = try ExternalTool.run(ExternalTool.path("python3")!, ["-c", script, path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(json["chi"] as? [[Double]] == [[0.5, -1.25, 3], [4, 5.5, -6]])
        #expect(json["dtype"] as? String == "float32")
        #expect(json["compression"] as? String == "gzip")
        #expect(json["shuffle"] as? Bool == true)
        #expect(json["method"] as? String == "tkd")
        #expect(json["method_is_str"] as? Bool == true)
        #expect(json["threshold"] as? Double == 0.15)
        #expect(json["shape"] as? [Int] == [64, 64, 48])
        #expect(json["labels"] as? [String] == ["χ", "ppm"])
        #expect(json["labels_as_str"] as? [String] == ["χ", "ppm"])
    }

    @Test(.enabled(if: ExternalTool.pythonHasH5py, "python3 with h5py is not available"))
    func filesWrittenByH5pyAreRead() throws {
        let directory = try HDF5Scratch()
        let path = directory.file("from-h5py.h5")
        let script = """
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "w") as f:
                d = f.create_dataset("grp/int16", data=np.arange(-3, 3, dtype=np.int16).reshape(2, 3),
                                     compression="gzip", compression_opts=6, shuffle=True)
                d.attrs["fixed"] = np.bytes_(b"abc")
                d.attrs["flag"] = np.bool_(True)
                d.attrs["f32"] = np.float32(0.5)
                d.attrs["u64"] = np.array([2**63 + 1], dtype=np.uint64)
                f["grp"].attrs["note"] = "χ map"
                f.create_dataset("fixed_strings", data=np.array([b"ab", b"c"], dtype="S4"))
            """
        _ = try ExternalTool.run(ExternalTool.path("python3")!, ["-c", script, path])
        let file = try HDF5File.open(path)
        let dataset = try file.dataset("grp/int16")
        #expect(dataset.elementType == .integer(bits: 16, signed: true))
        #expect(try dataset.read(as: Int32.self) == [-3, -2, -1, 0, 1, 2])
        #expect(try dataset.read(as: Float.self) == [-3, -2, -1, 0, 1, 2])
        #expect(try dataset.storageOptions() == HDF5DatasetOptions(chunkShape: [2, 3], deflateLevel: 6, shuffle: true))
        #expect(try dataset.attribute("fixed") == .string("abc"))
        #expect(try dataset.attribute("f32") == .double(0.5))
        #expect(try file.group("grp").attribute("note") == .string("χ map"))
        #expect(try file.dataset("fixed_strings").readStrings() == ["ab", "c"])
        // h5py stores numpy bools as an HDF5 enum, and 2⁶³+1 does not fit Int: both are refused by
        // name, and the tree listing shows their types instead of failing.
        #expect(throws: QSMError.self) { _ = try dataset.attribute("flag") }
        #expect(throws: QSMError.self) { _ = try dataset.attribute("u64") }
        let tree = try file.describeTree()
        #expect(tree.contains("@flag  (enum, value not shown)"), "\(tree)")
        #expect(tree.contains("@u64  (uint64, value not shown)"), "\(tree)")
        #expect(tree.contains("int16  int16 (2, 3), chunks (2, 3), shuffle, deflate 6"), "\(tree)")
    }

    /// A small file with a compressed float32 dataset, string and numeric attributes, strings.
    private func writePeerFile(_ path: String) throws {
        let file = try HDF5File.create(path)
        let runs = try file.createGroup("runs")
        try runs.setAttribute("method", value: "tkd")
        try runs.setAttribute("threshold", value: 0.15)
        let chi = try file.writeDataset("runs/chi", values: [Float(0.5), -1.25, 3, 4, 5.5, -6], shape: [2, 3])
        try chi.setAttribute("shape", value: [64, 64, 48])
        try file.writeDataset("runs/labels", values: ["χ", "ppm"])
        try file.close()
    }
}

// MARK: - Test helpers

/// A temporary directory removed when the value goes away.
private final class HDF5Scratch {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("qsmbench-hdf5-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Runs `body` on a newly created thread and returns its result.
private func onNewThread<R: Sendable>(_ body: @escaping @Sendable () -> R) -> R {
    let box = ResultBox<R>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        box.value = body()
        done.signal()
    }
    thread.start()
    done.wait()
    return box.value!
}

/// Carries a result from another thread; the semaphore orders the write before the read.
private final class ResultBox<R>: @unchecked Sendable {
    var value: R?
}

/// Redirects file descriptor 2 to a file while `body` runs.
private enum StandardErrorCapture {
    /// `body`'s result and everything written to stderr meanwhile (by this or any thread).
    static func run<R>(_ body: () throws -> R) throws -> (R, String) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: url) }
        let capture = try FileHandle(forWritingTo: url)
        fflush(nil)
        let saved = dup(2)
        dup2(capture.fileDescriptor, 2)
        let result: R
        do {
            result = try body()
        } catch {
            fflush(nil); dup2(saved, 2); close(saved)
            throw error
        }
        fflush(nil)
        dup2(saved, 2)
        close(saved)
        try capture.close()
        return (result, String(decoding: try Data(contentsOf: url), as: UTF8.self))
    }
}

/// Optional command-line peers (h5dump, python3 + h5py).
private enum ExternalTool {
    /// The full path of `name` on PATH, or nil.
    static func path(_ name: String) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether `python3 -c "import h5py"` succeeds.
    static let pythonHasH5py: Bool = {
        guard let python = path("python3") else { return false }
        return (try? run(python, ["-c", "import h5py"])) != nil
    }()

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a tool and returns its standard output; throws on a non-zero exit.
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(executable) exited \(process.terminationStatus): "
                          + String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }
}
