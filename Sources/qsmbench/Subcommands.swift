import ArgumentParser

extension QSMBenchCommand {
    /// Every subcommand, in the order `--help` lists them.
    static let subcommandList: [any ParsableCommand.Type] = [
        BenchCommand.self,
        ReportCommand.self,
        BenchmarkCommand.self,
        InfoCommand.self,
        ConvertCommand.self,
        SimulateCommand.self,
        RunCommand.self,
        ListCommand.self,
    ]
}
