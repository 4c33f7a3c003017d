import Foundation

extension HDF5File {
    /// Writes `volume` as a dataset with its geometry in attributes; readable by `readVolume`.
    ///
    /// HDF5 dimensions are (z, y, x), or (frame, z, y, x) with several frames, so the voxel
    /// buffer is written as is (x fastest, as in NIfTI) and h5py sees `array[z, y, x]` — use
    /// `.T` in numpy for `[x, y, z]`, as with MATLAB v7.3 files. Attributes: `voxel_size`
    /// (3 float64, mm, x y z), `affine` (4×4 float64, voxel → world mm, row-major) and `axes`
    /// ("z,y,x" or "frame,z,y,x").
    @discardableResult
    public func writeVolume<T: HDF5Numeric>(_ volume: Volume<T>, to path: String,
                                            options: HDF5DatasetOptions = .compressed) throws(QSMError) -> HDF5Dataset {
        let shape = volume.grid.shape
        let spatial = [shape.z, shape.y, shape.x]
        let dataset = try writeDataset(path, values: volume.voxels,
                                       shape: volume.frames > 1 ? [volume.frames] + spatial : spatial,
                                       options: options)
        let size = volume.grid.voxelSize
        try dataset.setAttribute("voxel_size", value: [size.x, size.y, size.z])
        try dataset.setAttribute("affine", values: volume.grid.affine.entries, shape: [4, 4])
        try dataset.setAttribute("axes", value: volume.frames > 1 ? "frame,z,y,x" : "z,y,x")
        return dataset
    }

    /// Reads a 3-D or 4-D dataset written by `writeVolume` (or with the same attributes) as a volume.
    ///
    /// The grid comes from `affine` when present (voxel size from `voxel_size`, else from the
    /// affine's column norms) or from `voxel_size` alone (diagonal affine); a dataset with
    /// neither cannot be placed in space and is rejected.
    public func readVolume<T: HDF5Numeric>(_ path: String, as: T.Type = T.self) throws(QSMError) -> Volume<T> {
        let dataset = try dataset(path)
        let context = HDF5Context(file: self.path, object: dataset.path)
        let names = Set(try dataset.attributeNames())
        let dims = dataset.shape
        guard dims.count == 3 || dims.count == 4 else {
            throw context.plainFailure("has \(dims.count) dimensions; a volume needs 3 (z, y, x) or 4 (frame, z, y, x)")
        }
        if names.contains("axes") {
            let expected = dims.count == 4 ? "frame,z,y,x" : "z,y,x"
            let axes = try dataset.attribute("axes").stringValue
            guard axes == expected else {
                throw context.plainFailure("axes \(axes.map { "\"\($0)\"" } ?? "(not a string)") are not \"\(expected)\"")
            }
        }
        let spatial = dims.suffix(3)
        let shape = SIMD3(spatial[spatial.startIndex + 2], spatial[spatial.startIndex + 1], spatial[spatial.startIndex])
        let frames = dims.count == 4 ? dims[0] : 1
        guard frames >= 1, shape.x >= 1, shape.y >= 1, shape.z >= 1 else {
            throw context.plainFailure("shape \(dims) has an empty dimension")
        }

        var affine: Affine?
        if names.contains("affine") {
            guard let entries = try dataset.attribute("affine").doubleValues, entries.count == 16,
                  entries.allSatisfy(\.isFinite) else {
                throw context.plainFailure("affine is not 16 finite numbers")
            }
            affine = Affine(rowMajor: entries)
        }
        var voxelSize: SIMD3<Double>
        if names.contains("voxel_size") {
            guard let sizes = try dataset.attribute("voxel_size").doubleValues, sizes.count == 3 else {
                throw context.plainFailure("voxel_size is not 3 numbers")
            }
            voxelSize = SIMD3(sizes[0], sizes[1], sizes[2])
        } else if let affine {
            voxelSize = affine.columnNorms
        } else {
            throw context.plainFailure("has no voxel_size or affine attribute, so its geometry is unknown")
        }
        guard (0..<3).allSatisfy({ voxelSize[$0].isFinite && voxelSize[$0] > 0 }) else {
            throw context.plainFailure("voxel size \(voxelSize) is not positive")
        }
        let grid = Grid(shape: shape, voxelSize: voxelSize, affine: affine)
        return try Volume(grid: grid, frames: frames, voxels: dataset.read(as: T.self))
    }
}
