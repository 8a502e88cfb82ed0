// swift-tools-version: 6.0
import PackageDescription

/// Numeric code must be compiled for a real CPU target: without it, SIMD fused multiply-add lowers to a libm
/// call per lane (see DESIGN §3). Zen 4 machines (these and CI) support x86-64-v4 (AVX-512).
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v4", "-O"])
]

/// The C kernels (integer dot products through intrinsics Swift cannot reach) are optimised even in debug builds
/// and compiled for baseline x86-64: each implementation file enables its own instruction set per function
/// (AVX2, AVX-512 VNNI), and the entry points pick one by cpuid at run time, so the fallbacks stay real.
let cKernelSettings: [CSetting] = [
    .unsafeFlags(["-O3"])
]

let package = Package(
    name: "Seed",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "seed", targets: ["seed"]),
        .library(name: "SeedEngine", targets: ["SeedEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "SeedTensor", swiftSettings: numericSettings),
        .target(name: "CSeedKernels", cSettings: cKernelSettings),
        .target(
            name: "SeedKernels", dependencies: ["SeedTensor", "CBLAS", "CSeedKernels"], swiftSettings: numericSettings),
        .target(name: "SeedFormats", dependencies: ["SeedTensor"], swiftSettings: numericSettings),
        .target(name: "SeedTokenizers", dependencies: ["SeedFormats"]),
        .target(name: "SeedModels", dependencies: ["SeedKernels", "SeedFormats"], swiftSettings: numericSettings),
        .target(
            name: "SeedEngine",
            dependencies: ["SeedModels", "SeedTokenizers", .product(name: "Logging", package: "swift-log")],
            swiftSettings: numericSettings  // the sampler runs over the vocabulary once per token
        ),
        .target(
            name: "SeedServer",
            dependencies: [
                "SeedEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SeedTrain",
            dependencies: [
                "SeedModels", "SeedKernels", "SeedFormats", "SeedTokenizers", "SeedTensor", "CBLAS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: numericSettings
        ),
        .target(name: "SeedDistributed", dependencies: ["CMPI"], swiftSettings: numericSettings),
        .executableTarget(
            name: "seed-mpi-selftest",
            dependencies: [
                "SeedDistributed", "CMPI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: numericSettings  // its checks build and compare arrays of millions of elements per rank
        ),
        .executableTarget(
            name: "seed",
            dependencies: [
                "SeedEngine", "SeedServer", "SeedTrain", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "SeedTestSupport", path: "Tests/Support"),
        .testTarget(name: "SeedTensorTests", dependencies: ["SeedTensor", "SeedTestSupport"]),
        .testTarget(name: "SeedKernelsTests", dependencies: ["SeedKernels", "CSeedKernels", "SeedTestSupport"]),
        .testTarget(name: "SeedFormatsTests", dependencies: ["SeedFormats", "SeedTestSupport"]),
        .testTarget(name: "SeedTokenizersTests", dependencies: ["SeedTokenizers", "SeedTestSupport"]),
        .testTarget(name: "SeedEngineTests", dependencies: ["SeedEngine", "SeedTestSupport"]),
        .testTarget(name: "SeedModelsTests", dependencies: ["SeedModels", "SeedEngine", "SeedTestSupport"]),
        .testTarget(
            name: "SeedServerTests",
            dependencies: [
                "SeedServer", "SeedTestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "SeedTrainTests", dependencies: ["SeedTrain", "SeedTestSupport"]),
        .testTarget(
            name: "SeedDistributedTests", dependencies: ["SeedDistributed", "seed-mpi-selftest", "SeedTestSupport"]),
        .testTarget(name: "SeedCLITests", dependencies: ["seed", "SeedFormats", "SeedTestSupport"]),
    ]
)
