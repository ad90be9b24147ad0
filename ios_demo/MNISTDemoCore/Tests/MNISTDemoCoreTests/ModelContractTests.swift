// ModelContractTests.swift — ModelContract's names against a freshly exported model.
//
// tests/ios/test_ios_swift_package.py exports a model with tfship's real exporters and writes what
// it has into a JSON file named by TFSHIP_MODEL_SPEC: the CoreML classifier's contract as read
// with coremltools (tfship.export.ios_install.read_mlmodel_contract) and the SavedModel's
// signatures (tfship.export.source.signatures_of), so a renamed output or input breaks this test.

import XCTest
@testable import MNISTDemoCore

final class ModelContractTests: XCTestCase {
    struct CoreMLSpec: Decodable {
        let class_name: String
        let input_name: String
        let image_width: Int
        let image_height: Int
        let color_space: String
        let label_output: String
        let probabilities_output: String
        let labels: [String]
        let pixel_scale: Double
        /// The spec stores the scale as float32: 1/255 comes back 1.2e-8 relative off.
        let pixel_scale_rel_tol: Double
    }

    struct TensorSpec: Decodable {
        let name: String
        let dtype: String
        let shape: [Int?]
    }

    struct SignatureSpec: Decodable {
        let inputs: [TensorSpec]
        let outputs: [TensorSpec]
    }

    struct SavedModelSpec: Decodable {
        let signatures: [String: SignatureSpec]
        let labels: [String]
        /// The model name `tfship serve` and TF Serving's MNIST example use by default.
        let served_model_name: String
    }

    struct Spec: Decodable {
        let coreml: CoreMLSpec
        let savedmodel: SavedModelSpec
    }

    private func spec() throws -> Spec {
        try TestInputs.decode(Spec.self, fromFileIn: TestInputs.modelSpec)
    }

    func testCoreMLNamesAreTheExportedModels() throws {
        let coreml = try spec().coreml
        XCTAssertEqual(ModelContract.className, coreml.class_name, "the .mlmodel file stem names the class")
        XCTAssertEqual(ModelContract.inputName, coreml.input_name)
        XCTAssertEqual(ModelContract.imageSize, coreml.image_width)
        XCTAssertEqual(ModelContract.imageSize, coreml.image_height)
        XCTAssertEqual(ModelContract.colorSpace, coreml.color_space)
        XCTAssertEqual(ModelContract.labelOutput, coreml.label_output)
        XCTAssertEqual(ModelContract.probabilitiesOutput, coreml.probabilities_output)
        XCTAssertEqual(ModelContract.labels, coreml.labels)
        XCTAssertEqual(ModelContract.pixelScale, coreml.pixel_scale,
                       accuracy: coreml.pixel_scale_rel_tol * ModelContract.pixelScale)
    }

    func testServerNamesAreTheSavedModelsSignature() throws {
        let savedModel = try spec().savedmodel
        XCTAssertEqual(ModelContract.Server.modelName, savedModel.served_model_name)
        let signature = try XCTUnwrap(savedModel.signatures[ModelContract.Server.signatureName],
                                      "no signature '\(ModelContract.Server.signatureName)' in "
                                          + "\(savedModel.signatures.keys.sorted())")
        // One float input of flattened images: the row format's instances are lists of pixels.
        XCTAssertEqual(signature.inputs.count, 1, "\(signature.inputs.map(\.name))")
        let input = try XCTUnwrap(signature.inputs.first)
        XCTAssertEqual(input.dtype, "float32")
        XCTAssertEqual(input.shape, [nil, ModelContract.imageSize * ModelContract.imageSize])
        let output = try XCTUnwrap(signature.outputs.first { $0.name == ModelContract.Server.outputName },
                                   "no output '\(ModelContract.Server.outputName)' in \(signature.outputs.map(\.name))")
        XCTAssertEqual(output.shape, [nil, ModelContract.labels.count])
        XCTAssertEqual(ModelContract.labels, savedModel.labels, "the server's score order")
    }
}
