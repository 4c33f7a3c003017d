/// An 8-bit-per-channel sRGB colour.
public struct RGBColor: Hashable, Sendable {
    /// Red, 0…255.
    public var red: UInt8
    /// Green, 0…255.
    public var green: UInt8
    /// Blue, 0…255.
    public var blue: UInt8

    /// A colour from its three channels.
    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// A grey level (all three channels equal).
    public init(grey level: UInt8) { self.init(level, level, level) }

    /// Opaque black.
    public static let black = RGBColor(grey: 0)
    /// Opaque white.
    public static let white = RGBColor(grey: 255)

    /// The colour a fraction `t` (0…1) of the way from `self` to `other`, channel by channel.
    func interpolated(to other: RGBColor, _ t: Double) -> RGBColor {
        func channel(_ a: UInt8, _ b: UInt8) -> UInt8 {
            UInt8((Double(a) + (Double(b) - Double(a)) * t).rounded())
        }
        return RGBColor(channel(red, other.red), channel(green, other.green), channel(blue, other.blue))
    }
}
