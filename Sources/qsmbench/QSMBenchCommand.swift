import ArgumentParser
import QSMCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct QSMBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qsmbench",
        abstract: "Benchmark and validate quantitative susceptibility mapping (QSM) algorithms.",
        version: QSMBenchVersion.string,
        subcommands: QSMBenchCommand.subcommandList)

    static func main() {
        MemoryPolicy.keepFreedLargeBlocks()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as QSMError {
            fail("\(error)", code: error.exitCode)
        } catch let error where exitCode(for: error) == .validationFailure {
            fail(oneLine(message(for: error)), code: 2)
        } catch {
            exit(withError: error)
        }
    }

    /// Prints `error: <message>` on stderr and exits.
    static func fail(_ message: String, code: Int32) -> Never {
        writeStandardError("error: \(message)\n")
        Glibc.exit(code)
    }

    private static func oneLine(_ text: String) -> String {
        let first = text.split(separator: "\n").first.map(String.init) ?? text
        return first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first
    }
}

/// The tool's version, recorded in every output file.
enum QSMBenchVersion {
    static let string = "0.1.0"
}

/// Writes `text` to standard error, unbuffered.
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}
