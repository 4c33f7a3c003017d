import QSMCore
import QSMPipeline
import Testing

/// `qsmbench benchmark pipeline`'s rows on a small volume: the counts, the warm-up protocol and the
/// row filter (the figures themselves are machine-dependent and not asserted).
@Suite struct PipelineBenchmarkTests {
    static let shape = SIMD3(24, 22, 20)

    @Test func warmUpTimesTheSecondRunAndCountsOnlyIt() throws {
        let warm = try runPipelineBenchmark(shape: Self.shape, echoes: 2, iterationCap: 2, only: ["tkd", "default"])
        let cold = try runPipelineBenchmark(shape: Self.shape, echoes: 2, iterationCap: 2, only: ["tkd", "default"], warmUp: false)
        #expect(warm.rows.map(\.label) == ["inversion tkd", "default pipeline"])
        #expect(cold.rows.map(\.label) == warm.rows.map(\.label))
        // TKD is one fused filter: two transforms in whichever run is counted. The counter is
        // process-wide, so tests running meanwhile can only add to it.
        #expect(warm.rows[0].transforms >= 2 && cold.rows[0].transforms >= 2)
        #expect(warm.rows[1].transforms > 2 && cold.rows[1].transforms > 2)
        #expect(warm.rows.allSatisfy { ($0.firstRunMilliseconds ?? -1) > 0 && $0.milliseconds > 0 })
        #expect(cold.rows.allSatisfy { $0.firstRunMilliseconds == nil })
        #expect(warm.rows.allSatisfy { ($0.ratioToFFTFloor ?? 0) > 0 })
        // The phantom's brain (z semi-axis 0.35 of the grid) leaves the outer planes empty: TKD's
        // transforms skip them, and the note gives the work done and the ratio to that floor.
        #expect(warm.rows[0].note.contains("fused plane transforms skipped") && warm.rows[0].note.contains("transforms' work"),
                "\(warm.rows[0].note)")
    }
}
