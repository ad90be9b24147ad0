// swift-tools-version:5.9
// MNISTDemoCore: everything in the iOS demo that is neither UI nor Core ML, as a package that builds
// and tests anywhere Swift runs (Linux included): the grayscale image, the stroke rasterizer, the
// digit preprocessing, the model contract, prediction parsing and the REST client for TF Serving's
// predict API. The app (../project.yml) uses it as a local package. No outside dependencies.
// Tools version 5.9 (Xcode 15, the README's minimum), so the package builds in Swift 5 language mode.

import PackageDescription

let package = Package(
    name: "MNISTDemoCore",
    // iOS 16 is the app's target; URLSession's async API needs iOS 15 / macOS 12.
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "MNISTDemoCore", targets: ["MNISTDemoCore"]),
    ],
    targets: [
        .target(name: "MNISTDemoCore"),
        .testTarget(
            name: "MNISTDemoCoreTests",
            dependencies: ["MNISTDemoCore"],
            // Computed by the Python clients (tests/ios/preprocessing_cases.py); the tests read a
            // fresher copy instead when TFSHIP_PREPROCESSING_CASES names one.
            resources: [.copy("Resources/preprocessing_cases.json")]
        ),
    ]
)
