import Foundation
import QSMBenchmark
import QSMIO
import Testing

@Suite struct SuiteTests {
    static let example = """
        name: example
        phantoms:
          - phantom: head
            matrix: [48, 48, 40]
            voxel: 1.5
          - phantom: sphere
            matrix: 32
            chi: 0.2
        protocols:
          - name: 3T
            b0: 3
            te: [0.004, 0.008, 0.012]
            snr: [50, 100, inf]
          - name: 7T
            b0: 7
        pipelines:
          - name: tkd
            inversion: tkd
          - name: tv
            bgremove: {method: vsharp, radius: 9}
            inversion: {method: tv, lambda: [1e-4, 1e-3]}
        seeds: [1, 2]
        attribution: true
        """

    @Test func expandsSweepsGridsAndSeeds() throws {
        let suite = try Suite.decode(try ConfigNode.parse(yaml: Self.example, file: "s.yaml"), file: "s.yaml")
        #expect(suite.name == "example")
        #expect(suite.phantoms.map(\.name) == ["head", "sphere"])
        #expect(suite.phantoms[0].matrix == SIMD3(48, 48, 40) && suite.phantoms[0].voxelSize == SIMD3(repeating: 1.5))
        #expect(suite.phantoms[1].options == ["chi": "0.2"])
        #expect(suite.protocols.map(\.name) == ["3T[snr=50]", "3T[snr=100]", "3T[snr=inf]", "7T"])
        #expect(suite.protocols[2].snr == .infinity && suite.protocols[2].echoTimes == [0.004, 0.008, 0.012])
        #expect(suite.protocols[1].sweep == SweepPoint(parameter: "snr", value: 100, base: "3T"))
        #expect(suite.protocols[3].fieldStrength == 7 && suite.protocols[3].sweep == nil)
        #expect(suite.pipelines.map(\.name) == ["tkd", "tv[inversion.lambda=1e-4]", "tv[inversion.lambda=1e-3]"])
        #expect(suite.pipelines[2].parameters == ["bgremove.radius": "9", "inversion.lambda": "1e-3"])
        #expect(suite.pipelines[2].methods == ["bgremove": "vsharp", "inversion": "tv"])
        // 2 phantoms × 4 protocols × 3 pipelines × 2 seeds.
        #expect(suite.runs.count == 48)
        #expect(Set(suite.runs.map(\.identifier)).count == 48)
        #expect(suite.attribution)
    }

    @Test func echoCountSweepKeepsSpacing() throws {
        let yaml = """
            phantoms: [{phantom: sphere}]
            protocols: [{te: [0.005, 0.010], echoes: [2, 4]}]
            pipelines: [{inversion: tkd}]
            """
        let suite = try Suite.decode(try ConfigNode.parse(yaml: yaml, file: "e.yaml"), file: "e.yaml")
        #expect(suite.protocols.map(\.echoTimes) == [[0.005, 0.010], [0.005, 0.010, 0.015, 0.020]])
    }

    /// Each bad suite names the file, the line and the key.
    @Test(arguments: [
        ("phantoms: [{phantom: sphere}]\nprotocols: [{b0: 3}]\npipelines: [{inversion: tkd}]\ncolour: red\n",
         "s.yaml:4: colour: unknown key; expected one of attribution, convention, description, name, phantoms, pipelines, protocols, save_volumes, seeds"),
        ("phantoms: [{phantom: cube}]\nprotocols: [{b0: 3}]\npipelines: [{inversion: tkd}]\n",
         "s.yaml:1: phantoms[0].phantom: unknown phantom 'cube'; expected sphere, cylinder, head or chimap"),
        ("phantoms: [{phantom: sphere}]\nprotocols:\n  - te: [4, 8]\npipelines: [{inversion: tkd}]\n",
         "s.yaml:3: protocols[0].te[0]: 4.0 is not in seconds; did you mean 0.004?"),
        ("phantoms: [{phantom: sphere, matrix: 0}]\nprotocols: [{b0: 3}]\npipelines: [{inversion: tkd}]\n",
         "s.yaml:1: phantoms[0].matrix: 0 is not a positive size"),
        ("phantoms: [{phantom: sphere}]\nprotocols: [{snr: [10, 20], b0: [3, 7]}]\npipelines: [{inversion: tkd}]\n",
         "s.yaml:2: protocols[0]: sweeps b0 and snr at once; sweep one field per protocol"),
        ("phantoms: []\nprotocols: [{b0: 3}]\npipelines: [{inversion: tkd}]\n",
         "s.yaml:1: document: phantoms: at least one phantom is needed"),
        ("phantoms: [{phantom: sphere}]\nprotocols: [{snr: -5}]\npipelines: [{inversion: tkd}]\n",
         "s.yaml:2: protocols[0].snr: SNR -5.0 must be positive (inf for noise-free)"),
    ])
    func badSuitesNameLineAndKey(_ yaml: String, _ message: String) {
        #expect(throws: QSMError.self) { try Suite.decode(try ConfigNode.parse(yaml: yaml, file: "s.yaml"), file: "s.yaml") }
        do {
            _ = try Suite.decode(try ConfigNode.parse(yaml: yaml, file: "s.yaml"), file: "s.yaml")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func yamlSyntaxErrorNamesTheLine() {
        do {
            _ = try ConfigNode.parse(yaml: "phantoms:\n  - phantom: [sphere\n", file: "bad.yaml")
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("bad.yaml: YAML syntax error:"))
            #expect("\(error)".contains("line"))
        }
    }
}

/// The suites shipped in phantoms/ parse and pass every pipeline and phantom check.
@Suite struct ShippedSuiteTests {
    @Test func shippedSuitesAreValid() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("phantoms").path
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }
            .filter { $0 != "head-tissues.yaml" }.sorted()
        #expect(names == ["inversions.yaml", "protocol-te.yaml", "quick.yaml", "slurm-demo.yaml"])
        let expectedRuns = ["inversions.yaml": 144, "protocol-te.yaml": 54, "quick.yaml": 48, "slurm-demo.yaml": 12]
        for name in names {
            let directory = RunnerTests.scratch()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let suite = try Suite.read(folder + "/" + name)
            let plan = try BenchmarkRunner(suite: suite, directory: directory, jobs: 1, resume: false, filter: nil,
                                           toolVersion: "test").plan()
            #expect(plan.runs.count == expectedRuns[name], "\(name)")
        }
        // The quick suite's brief: ≥ 6 inversions, ≥ 3 background removals, 2 SNR levels, 3 seeds.
        let quick = try Suite.read(folder + "/quick.yaml")
        #expect(Set(quick.pipelines.map { $0.methods["inversion"] ?? "tkd" }).count >= 6)
        #expect(Set(quick.pipelines.map { $0.methods["bgremove"] ?? "vsharp" }).count >= 3)
        #expect(Set(quick.runs.map(\.acquisition.snr)).count == 2 && quick.seeds.count == 3)
    }
}
