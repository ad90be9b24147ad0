// PreprocessingParityTests.swift — DigitPreprocessor gives the pixels the Python clients give.
//
// preprocessing_cases.json is computed by tfship.clients.images.preprocess
// (tests/ios/preprocessing_cases.py); a test on Linux fails when the Python side changes
// without this file being regenerated. Runs with: xcodebuild test -scheme MNISTDemo
//   -destination 'platform=iOS Simulator,name=iPhone 15'

import XCTest
@testable import MNISTDemo

final class PreprocessingParityTests: XCTestCase {
    private struct Case: Decodable {
        let name: String
        let width: Int
        let height: Int
        let pixels: [Float]
        let expected: [Float]?
    }

    private struct CaseFile: Decodable {
        let cases: [Case]
    }

    /// NumPy sums in float32 and Pillow in double; the stored values carry 4 decimals.
    private let pixelTolerance: Float = 0.01

    private func loadCases() throws -> [Case] {
        let bundle = Bundle(for: PreprocessingParityTests.self)
        let url = try XCTUnwrap(bundle.url(forResource: "preprocessing_cases", withExtension: "json"),
                                "preprocessing_cases.json is not in the test bundle")
        return try JSONDecoder().decode(CaseFile.self, from: Data(contentsOf: url)).cases
    }

    func testEveryCaseMatchesThePythonClients() throws {
        let cases = try loadCases()
        XCTAssertFalse(cases.isEmpty)
        for testCase in cases {
            let image = GrayImage(width: testCase.width, height: testCase.height, pixels: testCase.pixels)
            let result = DigitPreprocessor.centredDigit(from: image)
            guard let expected = testCase.expected else {
                XCTAssertNil(result, "\(testCase.name): expected no digit")
                continue
            }
            let digit = try XCTUnwrap(result, "\(testCase.name): no digit found")
            XCTAssertEqual(digit.width, ModelContract.imageSize, testCase.name)
            XCTAssertEqual(digit.height, ModelContract.imageSize, testCase.name)
            let worst = zip(digit.pixels, expected).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, pixelTolerance, "\(testCase.name): max |diff| \(worst)")
        }
    }

    func testModelInputIsEightBitAndServerInputIsItScaled() throws {
        let cases = try loadCases()
        let testCase = try XCTUnwrap(cases.first { $0.expected != nil })
        let image = GrayImage(width: testCase.width, height: testCase.height, pixels: testCase.pixels)
        let input = try XCTUnwrap(DigitPreprocessor.modelInput(from: image))
        XCTAssertTrue(input.pixels.allSatisfy { $0 == $0.rounded() && $0 >= 0 && $0 <= 255 })
        let instance = DigitPreprocessor.serverInstance(input)
        XCTAssertEqual(instance.count, ModelContract.imageSize * ModelContract.imageSize)
        for (value, pixel) in zip(instance, input.pixels) {
            XCTAssertEqual(value, Double(pixel) * ModelContract.pixelScale, accuracy: 1e-12)
        }
    }

    func testBoxWeightsAverageWhenShrinkingAndCopyWhenEnlarging() {
        let halve = DigitPreprocessor.boxWeights(inputSize: 4, outputSize: 2)
        XCTAssertEqual(halve.map { $0.first }, [0, 2])
        XCTAssertEqual(halve.map { $0.weights }, [[0.5, 0.5], [0.5, 0.5]])
        let double = DigitPreprocessor.boxWeights(inputSize: 2, outputSize: 4)
        XCTAssertEqual(double.map { $0.first }, [0, 0, 1, 1])
        XCTAssertTrue(double.allSatisfy { $0.weights == [1] })
    }
}
