import QSMPhantom

/// Builds the phantoms a suite names from their options.
public enum PhantomCatalog {
    /// Checks a phantom entry's options without building it.
    public static func validate(_ spec: PhantomSpec) throws(QSMError) {
        _ = try settings(spec, fieldStrength: 3)
    }

    /// The phantom of `spec` on `grid` (built-in phantoms; options `chi`, `radius`, `angle`, `calcification`).
    public static func make(_ spec: PhantomSpec, grid: Grid, fieldStrength: Double) throws(QSMError) -> Phantom {
        var phantom: Phantom
        switch try settings(spec, fieldStrength: fieldStrength) {
        case .sphere(let s): phantom = try .sphere(grid: grid, settings: s)
        case .cylinder(let s): phantom = try .cylinder(grid: grid, settings: s)
        case .head(let s): phantom = try .head(grid: grid, settings: s)
        }
        phantom.name = spec.name
        return phantom
    }

    private enum Settings {
        case sphere(AnalyticPhantomSettings), cylinder(AnalyticPhantomSettings), head(HeadPhantomSettings)
    }

    private static func settings(_ spec: PhantomSpec, fieldStrength: Double) throws(QSMError) -> Settings {
        let name = spec.name, options = spec.options
        func number(_ key: String) throws(QSMError) -> Double? {
            guard let text = options[key] else { return nil }
            guard let v = Double(text), v.isFinite else { throw .invalidParameter("phantom \(name).\(key)", "'\(text)' is not a number") }
            return v
        }
        switch spec.kind {
        case "sphere", "cylinder":
            var settings = AnalyticPhantomSettings()
            if let chi = try number("chi") { settings.chi = chi }
            if let radius = try number("radius") {
                guard radius > 0 else { throw .invalidParameter("phantom \(name).radius", "\(radius) mm must be positive") }
                settings.radius = radius
            }
            if let angle = try number("angle") { settings.angleDegrees = angle }
            for key in options.keys where !["chi", "radius", "angle"].contains(key) {
                throw .invalidParameter("phantom \(name).\(key)", "unknown option; expected chi, radius, angle")
            }
            return spec.kind == "sphere" ? .sphere(settings) : .cylinder(settings)
        case "head":
            var settings = HeadPhantomSettings()
            settings.fieldStrength = fieldStrength
            if let calcification = options["calcification"] {
                guard let flag = Bool(calcification.lowercased()) else {
                    throw .invalidParameter("phantom \(name).calcification", "'\(calcification)' is not true or false")
                }
                settings.calcification = flag
            }
            for key in options.keys where key != "calcification" {
                throw .invalidParameter("phantom \(name).\(key)", "unknown option; expected calcification")
            }
            return .head(settings)
        default:
            throw .invalidParameter("phantom \(name)", "'\(spec.kind)' cannot be used in a suite yet; use sphere, cylinder or head")
        }
    }

    /// `direction` seen by an object rotated by `degrees` about x, then y, then z: Rᵀ·direction.
    public static func rotate(_ direction: SIMD3<Double>, byDegrees degrees: SIMD3<Double>) -> SIMD3<Double> {
        guard degrees != .zero else { return direction }
        // Orientation gives Rᵀ·ẑ; build Rᵀ·d from the three basis images.
        func column(_ axis: SIMD3<Double>) -> SIMD3<Double> {
            // Rᵀ·e = rotation by −degrees in reverse order; use Orientation through a basis change.
            rotateVector(axis, degrees: degrees)
        }
        let d = direction
        return column(SIMD3(1, 0, 0)) * d.x + column(SIMD3(0, 1, 0)) * d.y + column(SIMD3(0, 0, 1)) * d.z
    }

    private static func rotateVector(_ v: SIMD3<Double>, degrees: SIMD3<Double>) -> SIMD3<Double> {
        // R = Rz·Ry·Rx; Rᵀ·v = Rxᵀ·Ryᵀ·Rzᵀ·v.
        func rx(_ a: Double, _ v: SIMD3<Double>) -> SIMD3<Double> {
            SIMD3(v.x, Double.cos(a) * v.y - Double.sin(a) * v.z, Double.sin(a) * v.y + Double.cos(a) * v.z)
        }
        func ry(_ a: Double, _ v: SIMD3<Double>) -> SIMD3<Double> {
            SIMD3(Double.cos(a) * v.x + Double.sin(a) * v.z, v.y, -Double.sin(a) * v.x + Double.cos(a) * v.z)
        }
        func rz(_ a: Double, _ v: SIMD3<Double>) -> SIMD3<Double> {
            SIMD3(Double.cos(a) * v.x - Double.sin(a) * v.y, Double.sin(a) * v.x + Double.cos(a) * v.y, v.z)
        }
        let r = degrees * (Double.pi / 180)
        return rx(-r.x, ry(-r.y, rz(-r.z, v)))
    }
}
