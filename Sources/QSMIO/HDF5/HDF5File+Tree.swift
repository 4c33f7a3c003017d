extension HDF5File {
    /// An indented listing of every group and dataset with shapes, types, storage and attributes.
    ///
    /// Shapes are in HDF5 order (slowest first), as h5py and h5dump print them. Example:
    /// ```
    /// /
    ///   @created_by = "qsmbench"
    ///   chi  float32 (64, 64, 64), chunks (64, 64, 64), shuffle, deflate 4, 412345 bytes
    ///     @voxel_size = [1.0, 1.0, 1.0]
    ///   runs/
    /// ```
    public func describeTree() throws(QSMError) -> String {
        var lines: [String] = ["/"]
        try describeGroup(try root, depth: 1, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Absolute paths of every dataset: each group's own datasets, then its subgroups (name order).
    public func datasetPaths() throws(QSMError) -> [String] {
        var paths: [String] = []
        var pending = ["/"]
        while let group = pending.popLast() {
            var subgroups: [String] = []
            for child in try children(of: group) {
                let childPath = group == "/" ? "/" + child.name : group + "/" + child.name
                switch child.kind {
                case .dataset: paths.append(childPath)
                case .group: subgroups.append(childPath)
                case .other: break
                }
            }
            pending += subgroups.reversed()
        }
        return paths
    }

    private func describeGroup(_ group: HDF5Group, depth: Int, into lines: inout [String]) throws(QSMError) {
        let indent = String(repeating: "  ", count: depth)
        for name in try group.attributeNames() {
            lines.append(indent + attributeLine(name, { () throws(QSMError) in try group.attribute(name) },
                                                { () throws(QSMError) in try group.attributeType(name) }))
        }
        for child in try group.children() {
            let childPath = group.path == "/" ? "/" + child.name : group.path + "/" + child.name
            switch child.kind {
            case .group:
                lines.append(indent + child.name + "/")
                try describeGroup(try self.group(childPath), depth: depth + 1, into: &lines)
            case .dataset:
                let dataset = try dataset(childPath)
                lines.append(indent + child.name + "  " + (try datasetSummary(dataset)))
                for name in try dataset.attributeNames() {
                    lines.append(indent + "  " + attributeLine(name, { () throws(QSMError) in try dataset.attribute(name) },
                                                               { () throws(QSMError) in try dataset.attributeType(name) }))
                }
            case .other:
                lines.append(indent + child.name + "  (not a group or dataset)")
            }
        }
    }

    private func datasetSummary(_ dataset: HDF5Dataset) throws(QSMError) -> String {
        var parts = ["\(dataset.elementType) " + (dataset.shape.isEmpty ? "scalar" : shapeText(dataset.shape))]
        let (options, others) = try dataset.storageDetails()
        if let chunk = options.chunkShape { parts.append("chunks " + shapeText(chunk)) }
        if options.shuffle { parts.append("shuffle") }
        if let level = options.deflateLevel { parts.append("deflate \(level)") }
        parts += others
        parts.append("\(dataset.storageSize) bytes")
        return parts.joined(separator: ", ")
    }

    /// "@name = value  (type)"; an attribute `HDF5Value` cannot hold shows only its type.
    private func attributeLine(_ name: String, _ read: () throws(QSMError) -> HDF5Value,
                               _ type: () throws(QSMError) -> HDF5ElementType) -> String {
        let typeText = (try? type()).map { "\($0)" } ?? "unreadable type"
        guard let value = try? read() else { return "@\(name)  (\(typeText), value not shown)" }
        return "@\(name) = \(value)  (\(typeText))"
    }

    private func shapeText(_ shape: [Int]) -> String {
        "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}
