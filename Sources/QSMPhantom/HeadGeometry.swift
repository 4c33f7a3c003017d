import QSMCore

/// An axis-aligned ellipsoid (mm).
struct Ellipsoid: Sendable {
    var centre: SIMD3<Double>
    var semiAxes: SIMD3<Double>

    /// Σ((p − c)/a)²: < 1 inside.
    @inline(__always) func level(_ p: SIMD3<Double>) -> Double {
        let d = (p - centre) / semiAxes
        return (d * d).sum()
    }

    @inline(__always) func contains(_ p: SIMD3<Double>) -> Bool { level(p) < 1 }

    /// Approximate distance (mm) from p inside to the surface: (1 − ρ)/|∇ρ|, exact on the axes.
    @inline(__always) func depth(_ p: SIMD3<Double>) -> Double {
        let d = (p - centre) / semiAxes
        let rho = (d * d).sum().squareRoot()
        let g = d / semiAxes
        let gradient = (g * g).sum().squareRoot() / max(rho, 1e-9)
        return (1 - rho) / max(gradient, 1e-9)
    }

    /// The ellipsoid mirrored to the other hemisphere (x → −x).
    var mirrored: Ellipsoid { Ellipsoid(centre: SIMD3(-centre.x, centre.y, centre.z), semiAxes: semiAxes) }
}

/// A tube of radius r around the segment a–b (mm).
struct Capsule: Sendable {
    var a: SIMD3<Double>
    var b: SIMD3<Double>
    var radius: Double

    @inline(__always) func contains(_ p: SIMD3<Double>) -> Bool {
        let ab = b - a, ap = p - a
        let t = min(1, max(0, (ap * ab).sum() / (ab * ab).sum()))
        let d = ap - t * ab
        return (d * d).sum() < radius * radius
    }
}

/// The anatomy of the built-in head, in reference millimetres (RAS: +x right, +y anterior, +z superior),
/// origin at the head's centre.
///
/// Built from ellipsoids and tubes sized after adult head anatomy: scalp, a 7 mm skull with a skull
/// base (anterior fossa higher than the posterior fossa), paranasal sinuses, nasal cavity and ear
/// canals (air inside the head: the sources of realistic background fields near the orbitofrontal and
/// temporal lobes), a subarachnoid CSF layer, the interhemispheric fissure, cortical grey matter of
/// varying thickness (1.2–4.4 mm, a smooth folding pattern standing in for gyri), white matter,
/// ventricles, six deep grey matter nuclei per hemisphere, dural sinuses and internal cerebral veins,
/// and an optional calcification.
struct HeadGeometry: Sendable {
    /// Reference extent (mm) including an 8 mm margin of air on every side.
    static let referenceExtent = SIMD3<Double>(164, 204, 176)

    let scalp = Ellipsoid(centre: .zero, semiAxes: SIMD3(74, 94, 80))
    let skullOuter = Ellipsoid(centre: .zero, semiAxes: SIMD3(68, 88, 74))
    let skullInner = Ellipsoid(centre: .zero, semiAxes: SIMD3(61, 81, 67))
    /// Brain surface: the intracranial cavity minus a 2.5 mm subarachnoid CSF layer.
    let brain = Ellipsoid(centre: .zero, semiAxes: SIMD3(58.5, 78.5, 64.5))
    let csfLayer = 2.5
    let sinuses: [Ellipsoid]
    let veins: [Capsule]
    let calcification: Ellipsoid?
    // Deep grey matter, both hemispheres, in priority order.
    let nuclei: [(Ellipsoid, HeadLabel)]
    let ventricles: [Ellipsoid]

    init(calcification: Bool) {
        func both(_ e: Ellipsoid) -> [Ellipsoid] { [e, e.mirrored] }
        sinuses = [
            Ellipsoid(centre: SIMD3(0, 80, -20), semiAxes: SIMD3(13, 6, 9)),      // frontal sinus
            Ellipsoid(centre: SIMD3(0, 18, -42), semiAxes: SIMD3(12, 11, 9)),     // sphenoid sinus
            Ellipsoid(centre: SIMD3(0, 62, -50), semiAxes: SIMD3(7, 22, 16)),     // nasal cavity
        ] + both(Ellipsoid(centre: SIMD3(24, 50, -55), semiAxes: SIMD3(11, 14, 13)))   // maxillary sinuses
          + both(Ellipsoid(centre: SIMD3(64, -8, -38), semiAxes: SIMD3(12, 4, 4)))      // ear canals

        // Superior sagittal sinus along the inside of the skull vault, 0.95 of the inner table.
        var sagittal: [SIMD3<Double>] = []
        for degrees in stride(from: 25.0, through: 195.0, by: 10.0) {
            let t = degrees * .pi / 180
            sagittal.append(SIMD3(0, 0.95 * 81 * Double.cos(t), 0.95 * 67 * Double.sin(t)))
        }
        var tubes: [Capsule] = zip(sagittal, sagittal.dropFirst()).map { Capsule(a: $0, b: $1, radius: 3.5) }
        let confluence = sagittal.last!
        tubes.append(Capsule(a: SIMD3(0, -20, 12), b: confluence, radius: 2.5))               // straight sinus
        for side in [1.0, -1.0] {
            let path = [confluence, SIMD3(32 * side, -60, -22), SIMD3(44 * side, -40, -28), SIMD3(42 * side, -25, -40)]
            tubes += zip(path, path.dropFirst()).map { Capsule(a: $0, b: $1, radius: 3) }      // transverse, sigmoid
            tubes.append(Capsule(a: SIMD3(2.5 * side, 12, 10), b: SIMD3(0, -20, 12), radius: 1.2)) // internal cerebral vein
        }
        veins = tubes
        self.calcification = calcification ? Ellipsoid(centre: SIMD3(22, 20, 14), semiAxes: SIMD3(repeating: 2.5)) : nil

        var deep: [(Ellipsoid, HeadLabel)] = []
        for e in both(Ellipsoid(centre: SIMD3(4.5, -19, -12), semiAxes: SIMD3(repeating: 3.2))) { deep.append((e, .redNucleus)) }
        for e in both(Ellipsoid(centre: SIMD3(10, -14, -16), semiAxes: SIMD3(3.5, 8, 2.5))) { deep.append((e, .substantiaNigra)) }
        for e in both(Ellipsoid(centre: SIMD3(18, 1, -3), semiAxes: SIMD3(3.5, 8, 6))) { deep.append((e, .globusPallidus)) }
        for e in both(Ellipsoid(centre: SIMD3(24, 5, -1), semiAxes: SIMD3(5.5, 14, 10))) { deep.append((e, .putamen)) }
        for e in both(Ellipsoid(centre: SIMD3(12, 17, 8), semiAxes: SIMD3(4.5, 9, 8))) { deep.append((e, .caudate)) }
        for e in both(Ellipsoid(centre: SIMD3(11, -2, 16), semiAxes: SIMD3(3.5, 14, 4.5))) { deep.append((e, .caudate)) }
        for e in both(Ellipsoid(centre: SIMD3(9, -15, 4), semiAxes: SIMD3(7, 13, 8))) { deep.append((e, .thalamus)) }
        nuclei = deep
        ventricles = both(Ellipsoid(centre: SIMD3(5.5, -2, 19), semiAxes: SIMD3(3.5, 20, 4)))    // lateral ventricle bodies
            + both(Ellipsoid(centre: SIMD3(8, 20, 14), semiAxes: SIMD3(3.5, 8, 6)))            // frontal horns
            + both(Ellipsoid(centre: SIMD3(14, -28, 12), semiAxes: SIMD3(4, 10, 5)))           // atria
            + [Ellipsoid(centre: SIMD3(0, -12, 2), semiAxes: SIMD3(1.5, 12, 8))]               // third ventricle
    }

    /// Floor of the intracranial cavity (mm) at anterior position y: anterior fossa at −30,
    /// posterior fossa at −48, a ramp between.
    @inline(__always) static func skullBase(_ y: Double) -> Double {
        if y > 25 { return -30 }
        if y > -15 { return -30 - (25 - y) * 0.45 }
        return -48
    }

    /// Smooth folding pattern in [−1, 1] (three oblique plane waves, wavelengths 15–22 mm).
    @inline(__always) static func fold(_ p: SIMD3<Double>) -> Double {
        let twoPi = 2 * Double.pi
        let a = Double.sin(twoPi * (0.8 * p.x + 0.5 * p.y + 0.3 * p.z) / 18)
        let b = Double.sin(twoPi * (-0.3 * p.x + 0.7 * p.y - 0.6 * p.z) / 22 + 1.3)
        let c = Double.sin(twoPi * (0.5 * p.x - 0.4 * p.y + 0.75 * p.z) / 15 + 2.1)
        return (a + b + c) / 3
    }

    /// The tissue at reference position `p` (mm).
    func label(_ p: SIMD3<Double>) -> HeadLabel {
        if !scalp.contains(p) { return .air }
        let base = Self.skullBase(p.y)
        let intracranial = skullInner.contains(p) && p.z >= base
        if !intracranial {
            for s in sinuses where s.contains(p) { return .sinusAir }
            if !skullOuter.contains(p) { return .softTissue }
            if !skullInner.contains(p) { return .skull }
            return p.z > base - 6 ? .skull : .softTissue
        }
        if let c = calcification, c.contains(p) { return .calcification }
        // Veins hug the inner table or run in the midline; skip the tube tests elsewhere.
        if abs(p.x) < 6 || skullInner.level(p) > 0.6 {
            for v in veins where v.contains(p) { return .veins }
        }
        let floor = base + csfLayer
        if !brain.contains(p) || p.z < floor { return .csf }
        let fissure = p.z > 26 ? abs(p.x) - 1.5 : Double.infinity
        if fissure < 0 { return .csf }
        if abs(p.x) < 30 && abs(p.y + 5) < 35 && p.z > -30 && p.z < 26 {
            for (e, label) in nuclei where e.contains(p) { return label }
            for v in ventricles where v.contains(p) { return .csf }
        }
        let depth = min(brain.depth(p), p.z - floor, fissure)
        if depth < 4.4 && depth < 2.8 + 1.6 * Self.fold(p) { return .corticalGreyMatter }
        return .whiteMatter
    }
}
