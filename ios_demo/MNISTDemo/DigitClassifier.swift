// DigitClassifier.swift — runs the bundled MNISTClassifier model on one 28x28 image, on device.

import CoreML
import CoreVideo
import MNISTDemoCore
import Vision

enum ClassifierError: LocalizedError {
    case modelMissing
    case contractMismatch(String)
    case unexpectedOutput(String)

    var errorDescription: String? {
        switch self {
        case .modelMissing:
            return "\(ModelContract.className).\(ModelContract.compiledModelExtension) is not in the app. "
                + "Run 'tfship ios-install', then 'xcodegen generate', and build again (see ios_demo/README.md)."
        case .contractMismatch(let detail):
            return "The bundled model does not match ModelContract.swift: \(detail)"
        case .unexpectedOutput(let detail):
            return "The model answered in an unexpected form: \(detail)"
        }
    }
}

/// Two ways to run the same model; they must agree (Settings lets you switch to compare).
enum OnDeviceRoute: String, CaseIterable, Identifiable {
    /// MLModel with a feature provider: reads the outputs by the names in ModelContract, as the
    /// Xcode-generated MNISTClassifier class does.
    case coreML
    /// VNCoreMLRequest: Vision converts the image and returns VNClassificationObservations.
    case vision

    var id: String { rawValue }
    var title: String {
        switch self {
        case .coreML: return "Core ML"
        case .vision: return "Vision"
        }
    }
}

final class DigitClassifier {
    let model: MLModel
    private let visionModel: VNCoreMLModel

    /// Loads the compiled model from the bundle by its contract name, and checks its contract
    /// before the first drawing, so a mismatched model fails with a message, not a wrong answer.
    init(bundle: Bundle = .main) throws {
        guard let url = bundle.url(forResource: ModelContract.className,
                                   withExtension: ModelContract.compiledModelExtension) else {
            throw ClassifierError.modelMissing
        }
        model = try MLModel(contentsOf: url)
        try Self.checkContract(model.modelDescription)
        visionModel = try VNCoreMLModel(for: model)
    }

    static func checkContract(_ description: MLModelDescription) throws {
        guard let constraint = description.inputDescriptionsByName[ModelContract.inputName]?.imageConstraint else {
            throw ClassifierError.contractMismatch("no image input named '\(ModelContract.inputName)'")
        }
        guard constraint.pixelsWide == ModelContract.imageSize, constraint.pixelsHigh == ModelContract.imageSize else {
            throw ClassifierError.contractMismatch(
                "input is \(constraint.pixelsWide)x\(constraint.pixelsHigh), expected "
                    + "\(ModelContract.imageSize)x\(ModelContract.imageSize)")
        }
        // A grayscale image input is one 8-bit channel.
        guard constraint.pixelFormatType == kCVPixelFormatType_OneComponent8 else {
            throw ClassifierError.contractMismatch("input is not \(ModelContract.colorSpace)")
        }
        guard description.outputDescriptionsByName[ModelContract.labelOutput]?.type == .string else {
            throw ClassifierError.contractMismatch("no String output named '\(ModelContract.labelOutput)'")
        }
        guard description.outputDescriptionsByName[ModelContract.probabilitiesOutput]?.type == .dictionary else {
            throw ClassifierError.contractMismatch(
                "no Dictionary output named '\(ModelContract.probabilitiesOutput)'")
        }
        let labels = description.classLabels?.compactMap { $0 as? String } ?? []
        guard labels.sorted() == ModelContract.labels.sorted() else {
            throw ClassifierError.contractMismatch("labels are \(labels), expected \(ModelContract.labels)")
        }
    }

    /// `modelInput` is the preprocessed 28x28 image (DigitPreprocessor.modelInput); the model
    /// scales its 0...255 pixels by ModelContract.pixelScale itself.
    func classify(_ modelInput: GrayImage, route: OnDeviceRoute) throws -> Prediction {
        let image = try modelInput.cgImage()
        switch route {
        case .coreML: return try classifyWithCoreML(image)
        case .vision: return try classifyWithVision(image)
        }
    }

    private func classifyWithCoreML(_ image: CGImage) throws -> Prediction {
        guard let constraint = model.modelDescription.inputDescriptionsByName[ModelContract.inputName]?.imageConstraint else {
            throw ClassifierError.contractMismatch("no image input named '\(ModelContract.inputName)'")
        }
        let value = try MLFeatureValue(cgImage: image, constraint: constraint, options: nil)
        let input = try MLDictionaryFeatureProvider(dictionary: [ModelContract.inputName: value])
        let output = try model.prediction(from: input)
        guard let raw = output.featureValue(for: ModelContract.probabilitiesOutput)?.dictionaryValue else {
            throw ClassifierError.unexpectedOutput("no '\(ModelContract.probabilitiesOutput)' dictionary")
        }
        var probabilities: [String: Double] = [:]
        for (key, number) in raw {
            guard let label = key as? String else {
                throw ClassifierError.unexpectedOutput("label \(key) is not a String")
            }
            probabilities[label] = number.doubleValue
        }
        return Prediction(probabilities: probabilities)
    }

    private func classifyWithVision(_ image: CGImage) throws -> Prediction {
        let request = VNCoreMLRequest(model: visionModel)
        // The image already is 28x28; scaleFill guarantees Vision never crops an edge off.
        request.imageCropAndScaleOption = .scaleFill
        try VNImageRequestHandler(cgImage: image, options: [:]).perform([request])
        guard let observations = request.results as? [VNClassificationObservation], !observations.isEmpty else {
            throw ClassifierError.unexpectedOutput("Vision returned no classifications")
        }
        let pairs = observations.map { ($0.identifier, Double($0.confidence)) }
        return Prediction(probabilities: Dictionary(pairs) { first, second in max(first, second) })
    }
}
