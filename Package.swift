// swift-tools-version: 6.1
import PackageDescription
#if os(Linux)
import Foundation
#endif

/// On x86-64 Linux machines whose CPU has Haswell's instruction set (AVX2, FMA, BMI1/2, LZCNT,
/// MOVBE, F16C, POPCNT) the Swift code is compiled for Haswell: the numeric loops use 256-bit
/// vectors (SIMD8<Float> in one register instead of two SSE halves), about twice as fast where they
/// are not memory-bound. No floating-point contraction is enabled, so results are those of a
/// baseline x86-64 build. The check is of the building machine: set QSMBENCH_PORTABLE=1 for a
/// binary meant for older CPUs (e.g. built on a cluster's login node for pre-2013 compute nodes)
/// or when cross-compiling.
let vectorSettings: [SwiftSetting] = {
    #if os(Linux) && arch(x86_64)
    let portable = ProcessInfo.processInfo.environment["QSMBENCH_PORTABLE"].map { !$0.isEmpty && $0 != "0" } ?? false
    if !portable,
       let flags = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        .split(separator: "\n").first(where: { $0.hasPrefix("flags") }).map({ Set($0.split(separator: " ")) }),
       ["avx2", "fma", "bmi1", "bmi2", "abm", "movbe", "f16c", "popcnt"].allSatisfy({ flags.contains(Substring($0)) }) {
        return [.unsafeFlags(["-target-cpu", "haswell"])]
    }
    #endif
    return []
}()

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)] + vectorSettings

let package = Package(
    name: "qsmbench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "qsmbench", targets: ["qsmbench"]),
        .library(name: "QSMCore", targets: ["QSMCore"]),
        .library(name: "QSMIO", targets: ["QSMIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // MARK: - Command-line tool
        .executableTarget(
            name: "qsmbench",
            dependencies: [
                "QSMCore", "QSMIO", "QSMPhantom", "QSMPipeline", "QSMMetrics", "QSMReport", "QSMBenchmark",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),

        // MARK: - Libraries
        .target(
            name: "QSMCore",
            dependencies: ["CFFTW", .product(name: "Numerics", package: "swift-numerics")],
            swiftSettings: strict),
        .target(
            name: "QSMIO",
            dependencies: ["QSMCore", "CHDF5", "CZlib", "Yams"],
            swiftSettings: strict),
        .target(name: "QSMPhantom", dependencies: ["QSMCore", "QSMIO", "Yams"], swiftSettings: strict),
        .target(name: "QSMPipeline", dependencies: ["QSMCore", "QSMIO"], swiftSettings: strict),
        .target(name: "QSMMetrics", dependencies: ["QSMCore"], swiftSettings: strict),
        .target(name: "QSMReport", dependencies: ["QSMCore", "QSMIO"], swiftSettings: strict),
        .target(
            name: "QSMBenchmark",
            dependencies: ["QSMCore", "QSMIO", "QSMPhantom", "QSMPipeline", "QSMMetrics", "QSMReport"],
            swiftSettings: strict),

        // MARK: - Implementation details (C libraries; only QSMCore and QSMIO import them)
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "QSMTestSupport", dependencies: ["QSMCore"], path: "Tests/QSMTestSupport",
                swiftSettings: strict),

        // MARK: - Tests
        .testTarget(name: "CLibrarySmokeTests", dependencies: ["CFFTW", "CHDF5", "CZlib"],
                    swiftSettings: strict),
        .testTarget(
            name: "QSMCoreTests",
            dependencies: ["QSMCore", "QSMTestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict),
        .testTarget(name: "QSMIOTests", dependencies: ["QSMIO", "QSMTestSupport"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "QSMPhantomTests", dependencies: ["QSMPhantom", "QSMTestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "QSMPipelineTests", dependencies: ["QSMPipeline", "QSMPhantom", "QSMMetrics", "QSMTestSupport"],
                    swiftSettings: strict),
        .testTarget(
            name: "QSMMetricsTests",
            dependencies: ["QSMMetrics", "QSMTestSupport",
                           .product(name: "PropertyBased", package: "swift-property-based")],
            exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "QSMReportTests", dependencies: ["QSMReport", "QSMTestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "QSMBenchmarkTests", dependencies: ["QSMBenchmark", "QSMPhantom", "QSMTestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "qsmbenchTests", dependencies: ["QSMIO", "QSMTestSupport"],
                    swiftSettings: strict),
    ]
)
