import Foundation
import Testing
import QSMPhantom
import QSMTestSupport

@Suite("Head phantom")
struct HeadPhantomTests {
    static let grid = Grid(shape: SIMD3(80, 96, 88), voxelSize: SIMD3(repeating: 2))

    static func repositoryFile(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(relative).path
    }

    @Test func builtInTableIsTheShippedYAML() throws {
        let shipped = try TissueTable.read(Self.repositoryFile("phantoms/head-tissues.yaml"))
        #expect(try TissueTable.builtIn() == shipped)
        #expect(shipped.tissues.count == HeadLabel.allCases.count)
        #expect(shipped.tissue(.globusPallidus).chi > shipped.tissue(.putamen).chi)
    }

    @Test func everyTissueIsPresentAndPartialVolumeIsSmooth() throws {
        var settings = HeadPhantomSettings()
        settings.calcification = true
        let head = try Phantom.head(grid: Self.grid, settings: settings)
        let present = Set(head.segmentation.voxels)
        for label in HeadLabel.allCases {
            #expect(present.contains(UInt8(label.rawValue)), "label \(label) missing")
        }
        let table = try TissueTable.builtIn()
        // Partial volume: many boundary voxels hold values between the pure tissue values.
        let pure = Set(table.tissues.map { Float($0.chi) })
        let mixed = head.chi.voxels.filter { !pure.contains($0) }.count
        #expect(mixed > Self.grid.count / 50, "only \(mixed) partial-volume voxels")
        let range = head.chi.voxels.min()!...head.chi.voxels.max()!
        #expect(range.lowerBound >= -2.0 && range.upperBound <= 9.4 + 1e-6)
        // The whole head fits in the field of view: the faces of the box are air.
        for z in [0, Self.grid.shape.z - 1] { for y in 0..<Self.grid.shape.y { for x in 0..<Self.grid.shape.x {
            #expect(head.segmentation[x, y, z] == 0)
        } } }
        // Mask = intracranial tissue: it contains the deep nuclei, excludes bone and scalp.
        for i in 0..<Self.grid.count {
            let l = Int(head.segmentation.voxels[i])
            let nuclei: [HeadLabel] = [.caudate, .putamen, .globusPallidus, .thalamus, .redNucleus, .substantiaNigra]
            if nuclei.map(\.rawValue).contains(l) { #expect(head.mask.voxels[i]) }
            if [HeadLabel.skull, .softTissue, .air].map(\.rawValue).contains(l) { #expect(!head.mask.voxels[i]) }
        }
        // Pure globus pallidus voxels carry the table value.
        let gp = (0..<Self.grid.count).filter { head.segmentation.voxels[$0] == UInt8(HeadLabel.globusPallidus.rawValue) }.map { head.chi.voxels[$0] }
        #expect(gp.filter { abs(Double($0) - 0.15) < 1e-6 }.count > gp.count / 3)
    }

    @Test func deterministicAndCalcificationOptional() throws {
        let a = try Phantom.head(grid: Self.grid)
        let b = try Phantom.head(grid: Self.grid)
        #expect(a.chi.voxels == b.chi.voxels)
        #expect(a.segmentation.voxels == b.segmentation.voxels)
        let calcification = UInt8(HeadLabel.calcification.rawValue)
        #expect(!a.segmentation.voxels.contains(calcification))
        #expect(!a.labels.contains { $0.index == HeadLabel.calcification.rawValue })
    }

    @Test func r2starScalesLinearlyWithField() throws {
        var settings = HeadPhantomSettings()
        settings.fieldStrength = 7
        let high = try Phantom.head(grid: Self.grid, settings: settings)
        let low = try Phantom.head(grid: Self.grid)
        let whiteMatter = (0..<Self.grid.count).first { low.segmentation.voxels[$0] == UInt8(HeadLabel.whiteMatter.rawValue) && low.r2star.voxels[$0] == 21 }!
        #expect(abs(Double(high.r2star.voxels[whiteMatter]) - 21 * 7 / 3) < 1e-4)
        #expect(high.chi.voxels == low.chi.voxels)
    }

    /// Air around the head and in the sinuses makes a background field of the order of ppm inside
    /// the brain, much larger than the local field of brain tissue (order 0.01–0.1 ppm).
    @Test func backgroundFieldDominatesLocalField() throws {
        let head = try Phantom.head(grid: Self.grid)
        let scan = try Simulator().run(head)
        let inside = (0..<Self.grid.count).filter { head.mask.voxels[$0] }
        func spread(_ v: Volume<Float>) -> Double {
            let values = inside.map { Double(v.voxels[$0]) }
            return values.max()! - values.min()!
        }
        let background = spread(scan.truth.backgroundField), local = spread(scan.truth.localField)
        #expect(background > 1, "background spread \(background) ppm")
        #expect(local > 0.05 && local < 1, "local spread \(local) ppm")
        #expect(background > 5 * local)
    }

    @Test func badTissueTablesAreRejected() {
        #expect(throws: QSMError.self) { try TissueTable.decode("tissues: 3", source: "x.yaml") }
        let missing = """
            reference_field_strength: 3
            r2star_field_scaling: linear
            tissues:
              - {label: 1, name: wm, chi: 0, m0: 1, r2star: 1, in_mask: true, sources: []}
            """
        #expect(throws: QSMError.self) { try TissueTable.decode(missing, source: "x.yaml") }
        #expect(throws: QSMError.invalidFile("/nonexistent.yaml", "cannot read the tissue table")) {
            try TissueTable.read("/nonexistent.yaml")
        }
    }
}
