import ArgumentParser

extension QSMBenchCommand {
    /// Every subcommand, in the order `--help` lists them.
    static let subcommandList: [any ParsableCommand.Type] = [
        BenchCommand.self,
        ReportCommand.self,
        CompareCommand.self,
        SimulateCommand.self,
        RunCommand.self,
        StatusCommand.self,
        ScoreCommand.self,
        ListCommand.self,
        InfoCommand.self,
        ConvertCommand.self,
        BenchmarkCommand.self,
        BenchTaskCommand.self,
        BenchCollectCommand.self,
        RunTaskCommand.self,
    ]
}
