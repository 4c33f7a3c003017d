/// A 3-D (or 4-D, `frames` > 1) voxel array on a `Grid`, stored x fastest, frames outermost.
///
/// Float32 is the storage type for images; Double and `Complex` appear where precision or
/// k-space needs them. Use `withVoxels` / `withMutableVoxels` in hot loops.
public struct Volume<Element: Sendable>: Sendable {
    /// Geometry of one frame.
    public var grid: Grid
    /// Number of 3-D frames (echoes, time points); 1 for a 3-D volume.
    public private(set) var frames: Int
    /// The voxel values, x fastest, then y, z, frame.
    public var voxels: [Element]

    /// A volume of `frames` frames filled with `value`.
    public init(grid: Grid, frames: Int = 1, repeating value: Element) {
        precondition(frames >= 1)
        self.grid = grid
        self.frames = frames
        self.voxels = Array(repeating: value, count: grid.count * frames)
    }

    /// A volume wrapping `voxels`; throws if the count does not match the grid and frames.
    public init(grid: Grid, frames: Int = 1, voxels: [Element]) throws(QSMError) {
        guard frames >= 1, voxels.count == grid.count * frames else {
            throw .mismatch("volume", "\(voxels.count) voxels do not fill \(grid.shapeText)×\(frames)")
        }
        self.grid = grid
        self.frames = frames
        self.voxels = voxels
    }

    /// Shape of one frame.
    public var shape: SIMD3<Int> { grid.shape }

    /// Voxel value at (x, y, z) of frame `frame`.
    @inlinable public subscript(x: Int, y: Int, z: Int, frame: Int = 0) -> Element {
        get { voxels[grid.index(x, y, z) + frame * grid.count] }
        set { voxels[grid.index(x, y, z) + frame * grid.count] = newValue }
    }

    /// Frame `index` as a 3-D volume.
    public func frame(_ index: Int) -> Volume<Element> {
        precondition(index >= 0 && index < frames)
        let n = grid.count
        return Volume(unchecked: grid, frames: 1, voxels: Array(voxels[index * n..<(index + 1) * n]))
    }

    /// A 4-D volume stacking 3-D frames that share one grid.
    public static func stacking(_ volumes: [Volume<Element>]) throws(QSMError) -> Volume<Element> {
        guard let first = volumes.first else { throw .mismatch("volumes", "nothing to stack") }
        var all: [Element] = []
        all.reserveCapacity(first.grid.count * volumes.count)
        for (i, v) in volumes.enumerated() {
            try first.grid.requireMatches(v.grid, "frame 1", "frame \(i + 1)")
            all += v.voxels
        }
        return Volume(unchecked: first.grid, frames: volumes.count, voxels: all)
    }

    /// A volume of the same grid with each voxel transformed.
    @inlinable public func map<U: Sendable>(_ transform: (Element) throws -> U) rethrows -> Volume<U> {
        Volume<U>(unchecked: grid, frames: frames, voxels: try voxels.map(transform))
    }

    /// Calls `body` with the voxel buffer (read-only).
    @inlinable public func withVoxels<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try voxels.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with the voxel buffer (mutable).
    @inlinable public mutating func withMutableVoxels<R>(
        _ body: (inout UnsafeMutableBufferPointer<Element>) throws -> R
    ) rethrows -> R {
        try voxels.withUnsafeMutableBufferPointer(body)
    }

    @usableFromInline init(unchecked grid: Grid, frames: Int, voxels: [Element]) {
        self.grid = grid
        self.frames = frames
        self.voxels = voxels
    }
}

/// A binary mask: `true` inside.
public typealias Mask = Volume<Bool>

extension Volume where Element == Bool {
    /// Number of voxels inside the mask.
    public var insideCount: Int {
        // Bytes summed in blocks (vectorised; a Bool is stored as 0 or 1), ~10× the generic reduce.
        voxels.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt8.self) { bytes in
                var total = 0, start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + 255)
                    var block: UInt8 = 0
                    for i in start..<end { block &+= bytes[i] }
                    total += Int(block)
                    start = end
                }
                return total
            }
        }
    }
}

// The numeric helpers are @inlinable: called from other modules they are otherwise not specialised,
// and unspecialised per-voxel generic code costs ~20× a memory pass.
extension Volume where Element: BinaryFloatingPoint {
    /// A zero-filled volume.
    @inlinable public init(zeros grid: Grid, frames: Int = 1) { self.init(grid: grid, frames: frames, repeating: 0) }

    /// Converts the element type (e.g. Float ↔ Double).
    @inlinable public func converted<U: BinaryFloatingPoint & Sendable>(to _: U.Type = U.self) -> Volume<U> {
        map { U($0) }
    }

    /// The voxels inside `mask` set to their value, the others to zero.
    @inlinable public func masked(by mask: Mask) -> Volume<Element> {
        precondition(mask.grid.count == grid.count)
        var out = self
        let n = grid.count
        for f in 0..<frames { for i in 0..<n where !mask.voxels[i] { out.voxels[f * n + i] = 0 } }
        return out
    }

    /// Mean over `mask` (all voxels when nil), accumulated in Double.
    @inlinable public func mean(in mask: Mask? = nil) -> Double {
        var sum = 0.0, count = 0
        for i in 0..<voxels.count where mask?.voxels[i % grid.count] ?? true {
            sum += Double(voxels[i]); count += 1
        }
        return count > 0 ? sum / Double(count) : 0
    }

    /// The first voxel index holding NaN or ±∞, if any.
    @inlinable public var firstNonFinite: Int? { voxels.firstIndex { !$0.isFinite } }
}
