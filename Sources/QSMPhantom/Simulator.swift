import QSMCore

/// The ground truth of a simulated scan, on the acquired grid.
public struct SimulationTruth: Sendable {
    /// Susceptibility, ppm.
    public var chi: Volume<Float>
    /// The χ that makes the local field (ppm): inside the mask, the intracranial part of each voxel
    /// (partial-volume bone or air at the brain edge excluded); zero outside. Reconstructions from
    /// the local field can only recover this, so benchmarks score against it.
    public var localChi: Volume<Float>
    /// Evaluation mask (the phantom's mask).
    public var mask: Mask
    /// Segmentation (0 = background) and its label table.
    public var segmentation: Volume<UInt8>
    /// Label table of `segmentation`.
    public var labels: [SegmentationLabel]
    /// Total field encoded in the phase, ppm (after shim removal when it is on).
    public var totalField: Volume<Float>
    /// Field of the sources inside the mask, ppm.
    public var localField: Volume<Float>
    /// `totalField − localField`, ppm: sources outside the mask minus the shim, if any.
    public var backgroundField: Volume<Float>
    /// Proton density.
    public var m0: Volume<Float>
    /// R2*, s⁻¹.
    public var r2star: Volume<Float>
    /// φ0 added to every echo, rad (zero when off).
    public var phaseOffset: Volume<Float>
}

/// A simulated multi-echo GRE scan with its truth.
public struct SimulatedScan: Sendable {
    /// Phantom name (BIDS subject label).
    public var name: String
    /// Acquired grid; its affine encodes the B0 direction (Rᵀẑ = b̂).
    public var grid: Grid
    /// Echo times, s.
    public var echoTimes: [Double]
    /// Field strength, T.
    public var fieldStrength: Double
    /// B0 direction in voxel axes (unit).
    public var b0Direction: SIMD3<Double>
    /// Conventions the phase was made with.
    public var conventions: Conventions
    /// Magnitude, one frame per echo.
    public var magnitude: Volume<Float>
    /// Phase wrapped to (−π, π], rad, one frame per echo.
    public var phase: Volume<Float>
    /// Noise standard deviation per channel for each echo (0 without noise).
    public var noiseSigma: [Double]
    /// The settings used.
    public var acquisition: AcquisitionSettings
    /// The forward model used.
    public var forward: ForwardModel
    /// Ground truth.
    public var truth: SimulationTruth
}

/// Phantom → fields → multi-echo complex signal → magnitude and wrapped phase.
public struct Simulator: Sendable {
    /// Revision of the simulated physics, raised whenever equal settings give different data
    /// (2: the local field's sources are taken inside the mask only), so caches can tell.
    public static let modelRevision = 2
    /// χ → field settings (B0 direction in voxel axes, D(0), padding, precision).
    public var forward: ForwardModel
    /// Echo times, field strength, noise, φ0, shim, background, k-space cropping.
    public var acquisition: AcquisitionSettings
    /// Replace the phantom's affine by one whose rotation encodes `forward.b0Direction` (built-in
    /// phantoms, as qsm-forward does); keep it for χ maps read from files, whose affine is real.
    public var alignAffineToB0: Bool

    /// A simulator; `forward.dipoleDC` follows `acquisition.conventions.dipoleDC`.
    public init(forward: ForwardModel = .init(), acquisition: AcquisitionSettings = .init(), alignAffineToB0: Bool = true) {
        self.forward = forward
        self.acquisition = acquisition
        self.alignAffineToB0 = alignAffineToB0
    }

    /// Simulates `phantom`.
    public func run(_ phantom: Phantom) throws(QSMError) -> SimulatedScan {
        try acquisition.validate()
        var forward = self.forward
        forward.dipoleDC = acquisition.conventions.dipoleDC
        try forward.validate(grid: phantom.grid)
        var grid = phantom.grid
        let b = forward.b0Direction / (forward.b0Direction * forward.b0Direction).sum().squareRoot()
        if alignAffineToB0 {
            grid.affine = Orientation.affine(shape: grid.shape, voxelSize: grid.voxelSize, b0Direction: b)
        }
        guard phantom.mask.insideCount > 0 else { throw .invalidParameter("phantom \(phantom.name)", "the mask is empty") }

        // Fields: local from χ inside the mask, background from χ outside.
        var local: Volume<Float>, background: Volume<Float>
        if acquisition.background {
            let fields = try forward.fields(of: [phantom.localChi, phantom.backgroundChi])
            (local, background) = (fields[0], fields[1])
        } else {
            local = try forward.field(of: phantom.localChi)
            background = Volume(zeros: phantom.grid)
        }
        if acquisition.shim {
            var total = local
            for i in total.voxels.indices { total.voxels[i] += background.voxels[i] }
            let fit = try SignalModel.secondOrderFit(total, mask: phantom.mask)
            for i in background.voxels.indices { background.voxels[i] -= fit.voxels[i] }
        }
        var total = local
        for i in total.voxels.indices { total.voxels[i] += background.voxels[i] }
        let offset = acquisition.phaseOffset ? SignalModel.phaseOffset(mask: phantom.mask) : Volume<Float>(zeros: phantom.grid)

        // Signal per echo, cropped, noisy.
        let acquired = acquisition.acquiredShape ?? grid.shape
        let cropping = acquired != grid.shape
        let acquiredGrid = cropping ? SignalModel.croppedGrid(grid, to: acquired) : grid
        let count = acquiredGrid.count
        var magnitude = Volume<Float>(grid: acquiredGrid, frames: acquisition.echoTimes.count, repeating: 0)
        var phase = magnitude
        var sigmas: [Double] = []
        let conventions = acquisition.conventions
        for (echo, te) in acquisition.echoTimes.enumerated() {
            let perPPM = conventions.phase(fromPPM: 1, echoTime: te, fieldStrength: acquisition.fieldStrength)
            var signal = [Complex<Float>](repeating: .zero, count: phantom.grid.count)
            signal.withUnsafeMutableBufferPointer { buffer in
                let out = SendablePointer(buffer.baseAddress!)
                let m0 = phantom.m0, r2 = phantom.r2star, field = total, phi0 = offset
                parallelFor(0..<buffer.count) { range in
                    for i in range {
                        let amplitude = Double(m0.voxels[i]) * Double.exp(-te * Double(r2.voxels[i]))
                        // No signal, no phase: +0 + 0i, whose atan2 is 0 (signed zeros would give ±π).
                        guard amplitude > 0 else { out[i] = .zero; continue }
                        let angle = Double(phi0.voxels[i]) + perPPM * Double(field.voxels[i])
                        out[i] = Complex(Float(amplitude * Double.cos(angle)), Float(amplitude * Double.sin(angle)))
                    }
                }
            }
            if cropping { signal = try SignalModel.cropKSpace(signal, grid: grid, to: acquired) }
            var sigma = 0.0
            if acquisition.snr.isFinite {
                let peak = signal.reduce(Float(0)) { max($0, $1.length) }
                sigma = Double(peak) / acquisition.snr
                SignalModel.addNoise(&signal, sigma: sigma, seed: acquisition.seed, echo: echo)
            }
            sigmas.append(sigma)
            let base = echo * count
            signal.withUnsafeBufferPointer { input in
                let source = SendablePointer(UnsafeMutablePointer(mutating: input.baseAddress!))
                magnitude.withMutableVoxels { m in
                    phase.withMutableVoxels { p in
                        let (outM, outP) = (SendablePointer(m.baseAddress! + base), SendablePointer(p.baseAddress! + base))
                        parallelFor(0..<count) { range in
                            for i in range {
                                let z = source[i]
                                outM[i] = z.length
                                outP[i] = Float.atan2(y: z.imaginary, x: z.real)
                            }
                        }
                    }
                }
            }
        }

        var truth = SimulationTruth(
            chi: phantom.chi, localChi: phantom.localChi, mask: phantom.mask,
            segmentation: phantom.segmentation, labels: phantom.labels,
            totalField: total, localField: local, backgroundField: background, m0: phantom.m0,
            r2star: phantom.r2star, phaseOffset: offset)
        if cropping { truth = try Self.crop(truth, from: grid, to: acquiredGrid) }
        else { truth.setGrid(acquiredGrid) }
        return SimulatedScan(
            name: phantom.name, grid: acquiredGrid, echoTimes: acquisition.echoTimes,
            fieldStrength: acquisition.fieldStrength, b0Direction: b, conventions: conventions,
            magnitude: magnitude, phase: phase, noiseSigma: sigmas, acquisition: acquisition, forward: forward,
            truth: truth)
    }

    /// Truth maps at the acquired resolution: continuous maps through the same k-space crop as the
    /// signal (so the truth field is exactly the field of the truth χ), labels and mask by the
    /// phantom voxel at each acquired voxel's position.
    static func crop(_ truth: SimulationTruth, from grid: Grid, to small: Grid) throws(QSMError) -> SimulationTruth {
        func real(_ volume: Volume<Float>) throws(QSMError) -> Volume<Float> {
            let complex = volume.voxels.map { Complex($0, 0) }
            let cropped = try SignalModel.cropKSpace(complex, grid: grid, to: small.shape)
            return try Volume(grid: small, voxels: cropped.map { $0.real })
        }
        func nearest<T: Sendable>(_ volume: Volume<T>, fill: T) -> Volume<T> {
            var out = Volume<T>(grid: small, repeating: fill)
            for z in 0..<small.shape.z { for y in 0..<small.shape.y { for x in 0..<small.shape.x {
                let source = SIMD3((0..<3).map { axis in
                    min(grid.shape[axis] - 1, Int((Double([x, y, z][axis]) * Double(grid.shape[axis]) / Double(small.shape[axis])).rounded()))
                })
                out[x, y, z] = volume[source.x, source.y, source.z]
            } } }
            return out
        }
        return SimulationTruth(
            chi: try real(truth.chi), localChi: try real(truth.localChi), mask: nearest(truth.mask, fill: false),
            segmentation: nearest(truth.segmentation, fill: 0), labels: truth.labels,
            totalField: try real(truth.totalField), localField: try real(truth.localField),
            backgroundField: try real(truth.backgroundField), m0: try real(truth.m0),
            r2star: try real(truth.r2star), phaseOffset: try real(truth.phaseOffset))
    }
}

extension SimulationTruth {
    mutating func setGrid(_ grid: Grid) {
        chi.grid = grid; localChi.grid = grid; mask.grid = grid; segmentation.grid = grid; totalField.grid = grid
        localField.grid = grid; backgroundField.grid = grid; m0.grid = grid; r2star.grid = grid
        phaseOffset.grid = grid
    }
}
