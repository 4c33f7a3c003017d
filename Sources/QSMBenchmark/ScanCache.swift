import Foundation
import QSMIO
import QSMPhantom

/// What a benchmark run reads from a simulated scan: the acquired data, its acquisition context and
/// the truth it is scored against. Built from a fresh simulation or loaded from the scan cache.
public struct BenchScan: Sendable {
    /// Magnitude, one frame per echo.
    public var magnitude: Volume<Float>
    /// Wrapped phase, rad, one frame per echo.
    public var phase: Volume<Float>
    /// Echo times, s.
    public var echoTimes: [Double]
    /// Field strength, T.
    public var fieldStrength: Double
    /// B0 direction in voxel axes (unit).
    public var b0Direction: SIMD3<Double>
    /// Conventions the phase was made with.
    public var conventions: Conventions
    /// Noise standard deviation per echo (0 without noise).
    public var noiseSigma: [Double]
    /// Evaluation mask.
    public var mask: Mask
    /// The χ that makes the local field, ppm (the scoring truth).
    public var localChi: Volume<Float>
    /// Field of the sources inside the mask, ppm (attribution input).
    public var localField: Volume<Float>
    /// Total field encoded in the phase, ppm (attribution input).
    public var totalField: Volume<Float>
    /// Segmentation (0 = background).
    public var segmentation: Volume<UInt8>
    /// Label table of `segmentation`.
    public var labels: [SegmentationLabel]

    /// The benchmark's view of a fresh simulation.
    public init(_ scan: SimulatedScan) {
        magnitude = scan.magnitude
        phase = scan.phase
        echoTimes = scan.echoTimes
        fieldStrength = scan.fieldStrength
        b0Direction = scan.b0Direction
        conventions = scan.conventions
        noiseSigma = scan.noiseSigma
        mask = scan.truth.mask
        localChi = scan.truth.localChi
        localField = scan.truth.localField
        totalField = scan.truth.totalField
        segmentation = scan.truth.segmentation
        labels = scan.truth.labels
    }

    init(magnitude: Volume<Float>, phase: Volume<Float>, echoTimes: [Double], fieldStrength: Double,
         b0Direction: SIMD3<Double>, conventions: Conventions, noiseSigma: [Double], mask: Mask,
         localChi: Volume<Float>, localField: Volume<Float>, totalField: Volume<Float>,
         segmentation: Volume<UInt8>, labels: [SegmentationLabel]) {
        self.magnitude = magnitude
        self.phase = phase
        self.echoTimes = echoTimes
        self.fieldStrength = fieldStrength
        self.b0Direction = b0Direction
        self.conventions = conventions
        self.noiseSigma = noiseSigma
        self.mask = mask
        self.localChi = localChi
        self.localField = localField
        self.totalField = totalField
        self.segmentation = segmentation
        self.labels = labels
    }
}

/// Simulated scans on disk, keyed by content (phantom, protocol, seed, tool version):
/// `DIR/cache/scans/<key>.h5`, written atomically. A later bench that adds or changes pipelines
/// loads the scan instead of simulating it again; the stored Float32 volumes are the simulation's
/// own, so results equal those of a fresh simulation bit for bit.
public struct ScanCache: Sendable {
    /// The folder holding the scan files.
    public let directory: String

    static let format = "qsmbench-scan/1"

    /// The cache of a bench output folder (`DIR/cache/scans`).
    public init(benchDirectory: String) {
        directory = benchDirectory + "/cache/scans"
    }

    /// The file of a scan key.
    public func path(for key: String) -> String { "\(directory)/\(key).h5" }

    /// The cached scan for `key`; nil when absent or unreadable (a damaged file is simulated again
    /// and overwritten, never trusted).
    public func load(key: String) -> BenchScan? {
        let path = path(for: key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try? read(path)
    }

    private func read(_ path: String) throws(QSMError) -> BenchScan {
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        let root = try file.root
        guard try root.attribute("format").stringValue == Self.format else { throw .invalidFile(path, "not a scan cache file") }
        func doubles(_ name: String) throws(QSMError) -> [Double] {
            guard let values = try root.attribute(name).doubleValues else { throw .invalidFile(path, "\(name) is not numeric") }
            return values
        }
        func decoded<T: Decodable>(_ name: String, as: T.Type) throws(QSMError) -> T {
            guard let text = try root.attribute(name).stringValue,
                  let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) else {
                throw .invalidFile(path, "\(name) is unreadable")
            }
            return value
        }
        let b0 = try doubles("b0_direction")
        guard b0.count == 3 else { throw .invalidFile(path, "b0_direction has \(b0.count) values, not 3") }
        let fieldStrength = try doubles("field_strength_T")
        guard fieldStrength.count == 1 else { throw .invalidFile(path, "field_strength_T is not one number") }
        let mask: Volume<UInt8> = try file.readVolume("/mask")
        return BenchScan(magnitude: try file.readVolume("/magnitude"), phase: try file.readVolume("/phase"),
                         echoTimes: try doubles("echo_times_s"), fieldStrength: fieldStrength[0],
                         b0Direction: SIMD3(b0[0], b0[1], b0[2]),
                         conventions: try decoded("conventions", as: Conventions.self),
                         noiseSigma: try doubles("noise_sigma"), mask: mask.map { $0 != 0 },
                         localChi: try file.readVolume("/local_chi"), localField: try file.readVolume("/local_field"),
                         totalField: try file.readVolume("/total_field"),
                         segmentation: try file.readVolume("/segmentation"),
                         labels: try decoded("labels", as: [SegmentationLabel].self))
    }

    /// Saves `scan` under `key` (atomically: a killed bench leaves no partial scan file).
    public func save(_ scan: BenchScan, key: String) throws(QSMError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .invalidFile(directory, "cannot create the scan cache: \(error.localizedDescription)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let conventions = try? encoder.encode(scan.conventions), let labels = try? encoder.encode(scan.labels) else {
            throw .library("JSON", "cannot encode the scan's conventions or labels")
        }
        let file = try HDF5File.create(path(for: key), atomic: true)
        let root = try file.root
        try root.setAttribute("format", value: Self.format)
        try root.setAttribute("echo_times_s", value: scan.echoTimes)
        try root.setAttribute("field_strength_T", value: [scan.fieldStrength])
        try root.setAttribute("b0_direction", value: [scan.b0Direction.x, scan.b0Direction.y, scan.b0Direction.z])
        try root.setAttribute("noise_sigma", value: scan.noiseSigma)
        try root.setAttribute("conventions", value: String(decoding: conventions, as: UTF8.self))
        try root.setAttribute("labels", value: String(decoding: labels, as: UTF8.self))
        // Uncompressed: writing and reading stay a small share of a bench's time (deflate cost more
        // than the simulation it saves at small sizes); the files are scratch, not results.
        let options = HDF5DatasetOptions.contiguous
        try file.writeVolume(scan.magnitude, to: "/magnitude", options: options)
        try file.writeVolume(scan.phase, to: "/phase", options: options)
        try file.writeVolume(scan.mask.map { UInt8($0 ? 1 : 0) }, to: "/mask", options: options)
        try file.writeVolume(scan.localChi, to: "/local_chi", options: options)
        try file.writeVolume(scan.localField, to: "/local_field", options: options)
        try file.writeVolume(scan.totalField, to: "/total_field", options: options)
        try file.writeVolume(scan.segmentation, to: "/segmentation", options: options)
        try file.close()
    }
}
