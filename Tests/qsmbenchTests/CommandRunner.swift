import Foundation
import Testing

/// The built `qsmbench` beside this test bundle (same build configuration), else in
/// .build/release or .build/debug of the package that holds this file.
func qsmbenchExecutable() -> String? {
    var candidates = [
        Bundle.main.bundleURL.appendingPathComponent("qsmbench"),
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qsmbench"),
    ]
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    candidates += ["release", "debug"].map { packageRoot.appendingPathComponent(".build/\($0)/qsmbench") }
    return candidates.map(\.path).first { FileManager.default.isExecutableFile(atPath: $0) }
}

struct CommandResult {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Runs the built binary with `arguments`.
func runQSMBench(_ arguments: [String]) throws -> CommandResult {
    let executable = try #require(qsmbenchExecutable(), "build qsmbench first (swift build --build-tests)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus,
                         standardOutput: String(decoding: outputData, as: UTF8.self),
                         standardError: String(decoding: errorData, as: UTF8.self))
}

/// A scratch directory removed at the end of the test.
final class CommandScratch {
    let directory = NSTemporaryDirectory() + "qsmbench-cli-" + UUID().uuidString
    init() { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: directory) }
    func path(_ name: String) -> String { directory + "/" + name }
}

