import ArgumentParser
import Foundation
import QSMCore
import QSMIO
import QSMMetrics

extension MetricConvention: ExpressibleByArgument {}

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a χ map against a known truth.",
        discussion: """
            Both maps are set to 0 outside the mask, then scored with the named convention \
            (default, challenge2016, challenge2019, qsm-ci); the convention and every metric's \
            definition are written with the scores. With --seg (challenge 2.0 head-phantom labels), \
            tissue/blood/DGM errors, per-label statistics, the DGM slope and the calcification \
            metrics are added.
            """)

    @Option(help: "Reconstructed χ map, ppm (.nii, .nii.gz or .h5).") var recon: String
    @Option(help: "True χ map, ppm, on the same grid.") var truth: String
    @Option(help: "Evaluation mask (non-zero = inside).") var mask: String
    @Option(help: "Label map (challenge 2.0 numbering) for regional metrics.") var seg: String?
    @Option(help: "Metric conventions (recorded with the scores).")
    var convention: MetricConvention = .default
    @Option(help: "Also write the scores as JSON to this file.") var json: String?
    @Option(help: "Also write the scores as Markdown to this file.") var markdown: String?

    func run() throws {
        let reconVolume = try Self.read(recon, role: "--recon")
        let truthVolume = try Self.read(truth, role: "--truth")
        let maskVolume = try Self.read(mask, role: "--mask")
        if let index = maskVolume.firstNonFinite {
            throw QSMError.invalidFile(mask, "non-finite value at voxel index \(index); a mask holds 0 and non-zero values")
        }
        let labels = try seg.map { path throws(QSMError) in
            try Segmentation.labels(from: try Self.read(path, role: "--seg"), name: path)
        }
        let names = Scorer.InputNames(recon: recon, truth: truth, mask: mask, segmentation: seg ?? "--seg")
        let scores = try Scorer(convention: convention, toolVersion: QSMBenchVersion.string)
            .score(recon: reconVolume, truth: truthVolume, mask: maskVolume.map { $0 != 0 },
                   segmentation: labels, names: names)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let document = scores.markdown
        if let json { try AtomicFile.write(try encoder.encode(scores) + Data("\n".utf8), to: json) }
        if let markdown { try AtomicFile.write(Data(document.utf8), to: markdown) }
        print(document, terminator: "")
    }

    /// A volume from a NIfTI or HDF5 file, by extension.
    static func read(_ path: String, role: String) throws(QSMError) -> Volume<Float> {
        switch try VolumeFileFormat(path: path, role: role) {
        case .nifti: return try NIfTI.readVolume(path)
        case .hdf5: return try HDF5Volumes.read(path)
        }
    }
}
