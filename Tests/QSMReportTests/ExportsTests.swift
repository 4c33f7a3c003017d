import QSMReport
import Testing

@Suite struct QSMReportModuleTests {
    /// QSMReport re-exports QSMCore, so report code can use volumes without another import.
    @Test func coreTypesAreVisible() {
        let grid = Grid(shape: SIMD3(2, 2, 2))
        #expect(grid.count == 8)
    }
}
