// ModelContract.swift — every name the app relies on to talk to its models, in one place.
//
// The CoreML names must match the exported MNISTClassifier.mlmodel; on Linux,
// tests/ios/test_contract.py reads this file with tree-sitter and compares each value with the
// spec of a freshly exported model (read with coremltools) and with tfship's Python contract.
// So edit a value here only together with the exporter, or those tests fail.
// Other Swift files must not repeat these literals (tests/ios/test_swift_sources.py checks).

import Foundation

enum ModelContract {
    /// The .mlmodel file stem. Xcode compiles MNISTClassifier.mlmodel into
    /// MNISTClassifier.mlmodelc in the app bundle and generates a Swift class of this name.
    static let className = "MNISTClassifier"
    /// What Xcode compiles a .mlmodel into; the app loads this from its bundle.
    static let compiledModelExtension = "mlmodelc"

    /// The model's only input: a grayscale image, light digit on a dark background.
    static let inputName = "image"
    static let imageSize = 28
    static let colorSpace = "grayscale"
    /// The model multiplies 0...255 pixels by this itself; the server needs it done beforehand.
    static let pixelScale = 1.0 / 255.0

    /// String: the most probable label.
    static let labelOutput = "classLabel"
    /// Dictionary<String, Double>: a probability for every label.
    static let probabilitiesOutput = "classLabelProbs"
    /// In the order of the server's score vector.
    static let labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

    /// TensorFlow Serving's REST predict API as tfship serves it (docs: TF Serving api_rest.md).
    enum Server {
        static let defaultURL = "http://localhost:8501"
        static let modelName = "mnist"
        static let signatureName = "predict_images"
        /// POST {url}/v1/models/{modelName}:predict
        static let predictPathFormat = "/v1/models/%@:predict"
        static let signatureKey = "signature_name"
        static let instancesKey = "instances"
        static let predictionsKey = "predictions"
        static let errorKey = "error"
    }
}
