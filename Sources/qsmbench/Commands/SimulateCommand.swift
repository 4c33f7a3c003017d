import ArgumentParser
import Foundation
import QSMIO
import QSMPhantom

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate multi-echo GRE data from a numerical phantom and write it as a BIDS dataset.",
        discussion: """
            Phantoms: sphere and cylinder (closed-form fields), head (built-in numerical head, tissue \
            table phantoms/head-tissues.yaml), chimap (your χ map, mask and optional segmentation, M0, \
            R2*; --chi-map DIR reads the qsm-forward head phantom layout). Signal: \
            S = M0·exp(−TE·R2*)·exp(i(φ0 + 2π·γ̄·B0·TE·Δb)), Δb in ppm from a k-space dipole \
            convolution on a 2×-padded grid. Noise: complex Gaussian, σ = max|S of the echo| / SNR \
            per channel, seeded and identical on any thread count. Ground truth goes to \
            DIR/derivatives/qsmbench. Nothing is written when an option is invalid.
            """)

    @Option(help: "sphere, cylinder, head or chimap.") var phantom: String
    @Option(help: "Output BIDS directory.") var out: String
    @Option(help: "Matrix N or NX,NY,NZ (default 64 for sphere/cylinder, 256,256,176 for head).") var matrix: String?
    @Option(help: "Voxel size in mm, X or X,Y,Z.") var voxel: String = "1"
    @Option(help: "Field strength B0 in tesla.") var b0: Double = 3
    @Option(help: "Echo times in seconds, comma-separated.") var te: String = "0.004,0.008,0.012,0.016"
    @Option(help: "Peak SNR per echo, or inf for no noise.") var snr: String = "inf"
    @Option(help: "Noise seed.") var seed: UInt64 = 0
    @Option(name: .customLong("b0-direction"), help: "B0 direction X,Y,Z in world coordinates (default 0,0,1).")
    var b0Direction: String?
    @Option(name: .customLong("head-rotation"), help: "Head rotation in degrees about x,y,z (instead of --b0-direction).")
    var headRotation: String?
    @Option(help: "Susceptibility inside the sphere/cylinder, ppm (default 0.1).") var chi: Double?
    @Option(help: "Sphere/cylinder radius in mm (default a quarter of the field of view).") var radius: Double?
    @Option(help: "Cylinder axis angle to B0 in degrees (default 90).") var angle: Double?
    @Option(name: .customLong("chi-map"), help: "χ map (NIfTI, ppm), or a qsm-forward head phantom directory.")
    var chiMap: String?
    @Option(help: "Brain mask (NIfTI) for --chi-map.") var mask: String?
    @Option(help: "Segmentation (NIfTI, integer labels) for --chi-map.") var seg: String?
    @Option(help: "M0 map (NIfTI) for --chi-map.") var m0: String?
    @Option(help: "R2* map (NIfTI, 1/s) for --chi-map.") var r2star: String?
    @Option(name: .customLong("phase-offset"), help: "Smooth phase offset φ0: on or off.") var phaseOffset: String = "off"
    @Option(help: "Background field from sources outside the mask: on or off.") var background: String = "on"
    @Option(help: "Second-order shim removal: on or off.") var shim: String = "off"
    @Option(name: .customLong("phase-scaling"), help: "radians (float32) or int12 (int16 0…4095, Units arbitrary).")
    var phaseScaling: String = "radians"
    @Option(help: "Head calcification: on or off.") var calcification: String = "off"
    @Option(help: "Head tissue table (YAML, default the built-in phantoms/head-tissues.yaml).") var tissues: String?
    @Option(name: .customLong("acquired-matrix"), help: "Crop k-space to this matrix (lower acquired resolution).")
    var acquiredMatrix: String?
    @Option(name: .customLong("dipole-dc"), help: "D(0) convention: zero or one-third.") var dipoleDC: String = "zero"
    @Option(help: "Gyromagnetic ratio γ̄ in MHz/T.") var gamma: Double = 42.5775
    @Option(help: "Forward-model padding factor per axis (≥ 1).") var padding: Double = 2
    @Option(help: "Forward-model FFT precision: single or double.") var precision: String = "single"
    @Option(help: "Sub-samples per axis in boundary voxels (default 5 sphere/cylinder, 3 head).") var supersampling: Int?
    @Option(help: "BIDS subject label (default the phantom name).") var subject: String?

    func run() throws {
        let plan = try SimulationPlan(self)
        let phantomValue = try plan.makePhantom()
        let scan = try plan.simulator(for: phantomValue).run(phantomValue)
        let files = try SimulationDataset.write(scan, to: out, phaseScaling: plan.phaseScaling, subject: subject,
                                                softwareVersion: QSMBenchVersion.string)
        print("simulate: \(phantomValue.name) \(scan.grid.shapeText), \(scan.echoTimes.count) echoes, B0 \(scan.fieldStrength) T → \(files.count) files in \(out)")
    }
}

/// Every option checked and converted before anything heavy runs or anything is written.
struct SimulationPlan {
    enum Kind: String, CaseIterable { case sphere, cylinder, head, chimap }
    var kind: Kind
    var shape: SIMD3<Int>?
    var voxelSize: SIMD3<Double>
    var acquisition = AcquisitionSettings()
    var forward = ForwardModel()
    var worldB0: SIMD3<Double>?
    var rotation: SIMD3<Double>?
    var analytic = AnalyticPhantomSettings()
    var head = HeadPhantomSettings()
    var files: PhantomFiles?
    var phaseScaling: PhaseScaling
    var paddingFactor: Double

    init(_ c: SimulateCommand) throws(QSMError) {
        guard let kind = Kind(rawValue: c.phantom) else {
            throw .invalidOption("--phantom", "'\(c.phantom)' is not one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.kind = kind
        guard let scaling = PhaseScaling(rawValue: c.phaseScaling) else {
            throw .invalidOption("--phase-scaling", "'\(c.phaseScaling)' is not radians or int12")
        }
        phaseScaling = scaling
        voxelSize = try parseTriple(c.voxel, option: "--voxel")
        if let m = c.matrix {
            guard kind != .chimap else { throw .invalidOption("--matrix", "not used with --phantom chimap; the χ map sets the grid") }
            shape = try parseShape(m, option: "--matrix")
        } else if kind != .chimap {
            shape = kind == .head ? SIMD3(256, 256, 176) : SIMD3(repeating: 64)
        }
        if kind == .chimap && c.voxel != "1" {
            throw .invalidOption("--voxel", "not used with --phantom chimap; the χ map sets the voxel size")
        }

        // Acquisition.
        acquisition.echoTimes = try Self.parseList(c.te, option: "--te")
        acquisition.fieldStrength = c.b0
        acquisition.seed = c.seed
        if c.snr == "inf" { acquisition.snr = .infinity } else {
            guard let value = Double(c.snr), value.isFinite else { throw .invalidOption("--snr", "'\(c.snr)' is not a positive number or inf") }
            acquisition.snr = value
        }
        acquisition.phaseOffset = try Self.parseSwitch(c.phaseOffset, option: "--phase-offset")
        acquisition.background = try Self.parseSwitch(c.background, option: "--background")
        acquisition.shim = try Self.parseSwitch(c.shim, option: "--shim")
        guard let dc = DipoleDC(rawValue: c.dipoleDC) else { throw .invalidOption("--dipole-dc", "'\(c.dipoleDC)' is not zero or one-third") }
        acquisition.conventions.dipoleDC = dc
        guard c.gamma.isFinite, c.gamma > 0 else { throw .invalidOption("--gamma", "\(c.gamma) MHz/T must be positive") }
        acquisition.conventions.gyromagneticRatio = c.gamma
        if let text = c.acquiredMatrix { acquisition.acquiredShape = try parseShape(text, option: "--acquired-matrix") }
        try acquisition.validate()
        if let shape, let acquired = acquisition.acquiredShape, !all(acquired .<= shape) {
            throw .invalidOption("--acquired-matrix", "\(acquired) is larger than --matrix \(shape)")
        }

        // Forward model.
        guard c.padding.isFinite, c.padding >= 1, c.padding <= 8 else {
            throw .invalidOption("--padding", "\(c.padding) must lie in [1, 8]")
        }
        paddingFactor = c.padding
        guard let precision = FFTPrecision(rawValue: c.precision) else {
            throw .invalidOption("--precision", "'\(c.precision)' is not single or double")
        }
        forward.precision = precision

        // Orientation.
        if let text = c.b0Direction {
            guard kind != .cylinder else { throw .invalidOption("--b0-direction", "the cylinder's orientation is set with --angle") }
            let v = try parseTriple(text, option: "--b0-direction", positive: false)
            guard (v * v).sum() > 0 else { throw .invalidOption("--b0-direction", "'\(text)' is the zero vector") }
            worldB0 = v
        }
        if let text = c.headRotation {
            guard kind != .cylinder, kind != .chimap else {
                throw .invalidOption("--head-rotation", "only for sphere and head; use --angle (cylinder) or --b0-direction (chimap)")
            }
            guard worldB0 == nil else { throw .invalidOption("--head-rotation", "give either --head-rotation or --b0-direction") }
            rotation = try parseTriple(text, option: "--head-rotation", positive: false)
        }

        // Phantom-specific options.
        let analyticOnly: [(String, Bool)] = [("--chi", c.chi != nil), ("--radius", c.radius != nil)]
        for (name, given) in analyticOnly where given && kind != .sphere && kind != .cylinder {
            throw .invalidOption(name, "only for --phantom sphere or cylinder")
        }
        if c.angle != nil && kind != .cylinder { throw .invalidOption("--angle", "only for --phantom cylinder") }
        if let value = c.chi { analytic.chi = value }
        if let value = c.radius { analytic.radius = value }
        if let value = c.angle { analytic.angleDegrees = value }
        let headOnly: [(String, Bool)] = [("--tissues", c.tissues != nil), ("--calcification", c.calcification != "off")]
        for (name, given) in headOnly where given && kind != .head { throw .invalidOption(name, "only for --phantom head") }
        head.calcification = try Self.parseSwitch(c.calcification, option: "--calcification")
        head.fieldStrength = c.b0
        if let path = c.tissues { head.tissues = try TissueTable.read(path) }
        if let s = c.supersampling {
            guard s >= 1 && s <= 8 else { throw .invalidOption("--supersampling", "\(s) is outside 1…8") }
            analytic.supersampling = s
            head.supersampling = s
        }
        let mapOptions: [(String, String?)] = [("--mask", c.mask), ("--seg", c.seg), ("--m0", c.m0), ("--r2star", c.r2star)]
        if kind == .chimap {
            guard let chi = c.chiMap else { throw .invalidOption("--chi-map", "required with --phantom chimap") }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: chi, isDirectory: &isDirectory), isDirectory.boolValue {
                var layout = try PhantomFiles.qsmForwardLayout(chi)
                if let m = c.mask { layout.mask = m }
                if let s = c.seg { layout.segmentation = s }
                if let m = c.m0 { layout.m0 = m }
                if let r = c.r2star { layout.r2star = r }
                files = layout
            } else {
                guard let mask = c.mask else { throw .invalidOption("--mask", "required with --chi-map FILE") }
                files = PhantomFiles(chi: chi, mask: mask, segmentation: c.seg, m0: c.m0, r2star: c.r2star)
            }
        } else {
            if c.chiMap != nil { throw .invalidOption("--chi-map", "only for --phantom chimap") }
            for (name, value) in mapOptions where value != nil { throw .invalidOption(name, "only for --phantom chimap") }
        }
    }

    /// Builds the phantom (reads files for chimap).
    func makePhantom() throws(QSMError) -> Phantom {
        switch kind {
        case .sphere: return try Phantom.sphere(grid: Grid(shape: shape!, voxelSize: voxelSize), settings: analytic)
        case .cylinder: return try Phantom.cylinder(grid: Grid(shape: shape!, voxelSize: voxelSize), settings: analytic)
        case .head: return try Phantom.head(grid: Grid(shape: shape!, voxelSize: voxelSize), settings: head)
        case .chimap:
            let phantom = try Phantom.read(files!)
            if let acquired = acquisition.acquiredShape, !all(acquired .<= phantom.grid.shape) {
                throw .invalidOption("--acquired-matrix", "\(acquired) is larger than the χ map \(phantom.grid.shapeText)")
            }
            return phantom
        }
    }

    /// The simulator for `phantom`: B0 direction in voxel axes, padding, affine handling.
    func simulator(for phantom: Phantom) -> Simulator {
        var model = forward
        model.paddingFactor = SIMD3((0..<3).map { phantom.paddingFactor[$0] == 1 ? 1 : paddingFactor })
        switch kind {
        case .cylinder:
            model.b0Direction = phantom.b0Direction
        case .chimap:
            model.b0Direction = phantom.grid.b0Direction(world: worldB0 ?? SIMD3(0, 0, 1))
        case .sphere, .head:
            if let rotation { model.b0Direction = Orientation.b0Direction(headRotationDegrees: rotation) }
            else { model.b0Direction = worldB0 ?? SIMD3(0, 0, 1) }
        }
        return Simulator(forward: model, acquisition: acquisition, alignAffineToB0: kind != .chimap)
    }

    static func parseSwitch(_ text: String, option: String) throws(QSMError) -> Bool {
        switch text {
        case "on": return true
        case "off": return false
        default: throw .invalidOption(option, "'\(text)' is not on or off")
        }
    }

    static func parseList(_ text: String, option: String) throws(QSMError) -> [Double] {
        guard !text.isEmpty else { throw .invalidOption(option, "no echo time given") }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part throws(QSMError) in
            guard let value = Double(part), value.isFinite else {
                throw .invalidOption(option, "'\(part)' in '\(text)' is not a number")
            }
            return value
        }
    }
}
