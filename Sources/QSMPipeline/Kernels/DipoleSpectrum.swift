import QSMCore

/// `DipoleKernel.halfSpectrum` computed in parallel over z-slices, in Float.
///
/// Same formula and D(0) convention as QSMCore's `DipoleKernel` (D(k) = 1/3 − (k·b̂)²/|k|² on physical
/// k, evaluated in Double); the QSMCore version is a serial closure loop that costs about three
/// FFTs at 256×256×176. A test checks the two agree exactly.
package enum DipoleSpectrum {
    /// D on the half spectrum of `shape`, x fastest; `b0Direction` in voxel axes.
    package static func halfSpectrum(shape: SIMD3<Int>, voxelSize: SIMD3<Double>, b0Direction: SIMD3<Double>,
                             dc: DipoleDC) -> [Float] {
        let b = b0Direction / (b0Direction * b0Direction).sum().squareRoot()
        let kx = KSpace.halfFrequencies(count: shape.x, spacing: voxelSize.x)
        let ky = KSpace.frequencies(count: shape.y, spacing: voxelSize.y)
        let kz = KSpace.frequencies(count: shape.z, spacing: voxelSize.z)
        let hx = kx.count, dcValue = Float(dc.value)
        var out = [Float](repeating: 0, count: hx * shape.y * shape.z)
        out.withUnsafeMutableBufferPointer { ob in
            let op = SendablePointer(ob.baseAddress!)
            parallelFor(0..<shape.z) { zs in
                for z in zs {
                    for y in 0..<shape.y {
                        let row = hx * (y + shape.y * z)
                        let yz2 = ky[y] * ky[y] + kz[z] * kz[z], yzb = ky[y] * b.y + kz[z] * b.z
                        for x in 0..<hx {
                            let k2 = kx[x] * kx[x] + yz2
                            if k2 == 0 { op[row + x] = dcValue; continue }
                            let kb = kx[x] * b.x + yzb
                            op[row + x] = Float(1.0 / 3 - kb * kb / k2)
                        }
                    }
                }
            }
        }
        return out
    }
}
