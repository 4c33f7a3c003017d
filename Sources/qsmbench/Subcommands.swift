import ArgumentParser

extension QSMBenchCommand {
    /// Every subcommand, in the order `--help` lists them.
    static let subcommandList: [any ParsableCommand.Type] = [
        BenchmarkCommand.self,
        InfoCommand.self,
        ConvertCommand.self,
        ScoreCommand.self,
    ]
}
