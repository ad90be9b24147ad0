// ModelContract.swift — every name the app relies on to talk to its models, in one place.
//
// The CoreML names must match the exported MNISTClassifier.mlmodel, the server names tfship's
// SavedModel served by TF Serving's REST API. On Linux, Tests/MNISTDemoCoreTests/ModelContractTests
// compares each value with the spec of a freshly exported model (written to JSON by the pytest
// fixture in tests/ios/), and tests/ios/test_ios_contract.py compares the same values, read from
// this file with tree-sitter, with tfship's Python mirror (APP_CONTRACT).
// So edit a value here only together with the exporter, or those tests fail.
// Other Swift files must not repeat these literals (tests/ios/test_ios_swift_sources.py checks).

import Foundation

public enum ModelContract {
    /// The .mlmodel file stem. Xcode compiles MNISTClassifier.mlmodel into
    /// MNISTClassifier.mlmodelc in the app bundle and generates a Swift class of this name.
    public static let className = "MNISTClassifier"
    /// What Xcode compiles a .mlmodel into; the app loads this from its bundle.
    public static let compiledModelExtension = "mlmodelc"

    /// The model's only input: a grayscale image, light digit on a dark background.
    public static let inputName = "image"
    public static let imageSize = 28
    public static let colorSpace = "grayscale"
    /// The model multiplies 0...255 pixels by this itself; the server needs it done beforehand.
    public static let pixelScale = 1.0 / 255.0

    /// String: the most probable label.
    public static let labelOutput = "classLabel"
    /// Dictionary<String, Double>: a probability for every label.
    public static let probabilitiesOutput = "classLabelProbs"
    /// In the order of the server's score vector.
    public static let labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

    /// TensorFlow Serving's REST predict API as tfship serves it (docs: TF Serving api_rest.md).
    public enum Server {
        public static let defaultURL = "http://localhost:8501"
        public static let modelName = "mnist"
        public static let signatureName = "predict_images"
        /// The signature's score output: TF Serving names it only when a signature has several.
        public static let outputName = "scores"
        /// POST {url}/v1/models/{modelName}:predict
        public static let predictPathFormat = "/v1/models/%@:predict"
        public static let signatureKey = "signature_name"
        public static let instancesKey = "instances"
        public static let predictionsKey = "predictions"
        public static let errorKey = "error"
    }
}
