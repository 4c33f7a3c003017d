import Foundation
import QSMMetrics
import QSMPipeline

/// What one run produced: its scores, per-stage attribution, timings and provenance.
public struct RunResult: Codable, Sendable {
    /// `phantom/protocol/pipeline/seed-N`.
    public var identifier: String
    /// Content key of the run (inputs, parameters, tool version).
    public var key: String
    /// What was run.
    public var spec: RunSpec
    /// Scores of the pipeline's final χ against the truth.
    public var scores: Scores
    /// Scores when a stage starts from ideal inputs: `inversion_from_true_local_field`,
    /// `from_true_total_field` (background removal + inversion); empty unless attribution is on.
    public var attribution: [String: Scores]
    /// Per-stage wall time and FFT count of the main pipeline run.
    public var stages: [StageRecord]
    /// Simulation wall time, ms (0 when the simulated scan was reused).
    public var simulationMilliseconds: Double
    /// Whole-run wall time, ms.
    public var wallMilliseconds: Double
    /// Peak resident memory of the process when the run finished, MiB.
    public var peakMemoryMiB: Double
    /// Time inside the pipelines (main run and attribution runs), ms; nil in records of older versions.
    public var algorithmMilliseconds: Double?
    /// Conventions of simulation and reconstruction.
    public var conventions: Conventions
    /// Metric convention name.
    public var metricConvention: String
    /// qsmbench version.
    public var toolVersion: String
    /// Date (ISO 8601, UTC) the run finished.
    public var finished: String
}

/// A run that could not complete: recorded so `--resume` retries it and the report lists it.
public struct RunFailure: Codable, Sendable {
    /// The run.
    public var identifier: String
    /// Its content key.
    public var key: String
    /// The one-line error.
    public var message: String
}

/// JSON coding of run records: sorted keys, and ∞/NaN (SNR = inf in a noise-free protocol, an
/// undefined metric) written as the strings "inf", "-inf", "nan", which plain JSON cannot hold.
enum BenchJSON {
    static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// Stable content keys: FNV-1a (64-bit) over canonical JSON, as 16 hex digits.
public enum ContentKey {
    /// The key of any encodable value (sorted keys, so field order does not matter).
    public static func of<T: Encodable>(_ value: T) -> String {
        // Finite numbers encode as before; ∞ and NaN as strings (they made plain JSON fail, and an
        // empty encoding would give every such value the same key).
        let data = (try? BenchJSON.encoder().encode(value)) ?? Data()
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in data { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), 0 where unknown.
public func peakResidentMemoryMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kilobytes / 1024
    }
    return 0
}
