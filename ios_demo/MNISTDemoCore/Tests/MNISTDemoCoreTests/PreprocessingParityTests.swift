// PreprocessingParityTests.swift — DigitPreprocessor gives the pixels the Python clients give.
//
// The cases are computed by tfship.clients.images.preprocess (tests/ios/preprocessing_cases.py).
// Under pytest they are computed fresh and passed in TFSHIP_PREPROCESSING_CASES; alone, the
// bundled Resources/preprocessing_cases.json is used (a Linux test keeps it current).

import XCTest
@testable import MNISTDemoCore

final class PreprocessingParityTests: XCTestCase {
    struct Case: Decodable {
        let name: String
        let width: Int
        let height: Int
        let pixels: [Float]
        let expected: [Float]?
    }

    struct CaseFile: Decodable {
        let cases: [Case]
    }

    /// On the 0...255 scale. NumPy sums the centre of mass in float32 and Pillow resamples in
    /// double, Swift does both in double; the file stores 4 decimals. Measured worst: 5e-5. A
    /// real difference (a different crop, size, offset or filter) moves pixels by whole units.
    static let pixelTolerance: Float = 0.01

    static func loadCases() throws -> [Case] {
        if ProcessInfo.processInfo.environment[TestInputs.preprocessingCases] != nil {
            return try TestInputs.decode(CaseFile.self, fromFileIn: TestInputs.preprocessingCases).cases
        }
        let url = try XCTUnwrap(Bundle.module.url(forResource: "preprocessing_cases", withExtension: "json"),
                                "preprocessing_cases.json is not among the test resources")
        return try TestInputs.decode(CaseFile.self, from: url).cases
    }

    func testEveryCaseMatchesThePythonClients() throws {
        let cases = try Self.loadCases()
        XCTAssertFalse(cases.isEmpty)
        for testCase in cases {
            let image = GrayImage(width: testCase.width, height: testCase.height, pixels: testCase.pixels)
            let result = DigitPreprocessor.centredDigit(from: image)
            guard let expected = testCase.expected else {
                XCTAssertNil(result, "\(testCase.name): the Python clients find no digit, Swift does")
                continue
            }
            let digit = try XCTUnwrap(result, "\(testCase.name): the Python clients find a digit, Swift none")
            XCTAssertEqual(digit.width, ModelContract.imageSize, testCase.name)
            XCTAssertEqual(digit.height, ModelContract.imageSize, testCase.name)
            let diffs = zip(digit.pixels, expected).map { abs($0 - $1) }
            let worst = diffs.indices.max { diffs[$0] < diffs[$1] } ?? 0
            XCTAssertLessThanOrEqual(
                diffs[worst], Self.pixelTolerance,
                "\(testCase.name): max |Swift - Python| \(diffs[worst]) at row \(worst / ModelContract.imageSize), "
                    + "column \(worst % ModelContract.imageSize) (Swift \(digit.pixels[worst]), Python \(expected[worst]))")
        }
    }

    func testModelInputIsEightBitAndServerInputIsItScaled() throws {
        let cases = try Self.loadCases()
        let testCase = try XCTUnwrap(cases.first { $0.expected != nil })
        let image = GrayImage(width: testCase.width, height: testCase.height, pixels: testCase.pixels)
        let input = try XCTUnwrap(DigitPreprocessor.modelInput(from: image))
        let full = try XCTUnwrap(DigitPreprocessor.centredDigit(from: image))
        XCTAssertTrue(input.pixels.allSatisfy { $0 == $0.rounded() && $0 >= 0 && $0 <= 255 })
        // Step 6 rounds once: never more than half an 8-bit step from the full-precision pixels.
        XCTAssertLessThanOrEqual(zip(input.pixels, full.pixels).map { abs($0 - $1) }.max() ?? 0, 0.5)
        let instance = DigitPreprocessor.serverInstance(input)
        XCTAssertEqual(instance.count, ModelContract.imageSize * ModelContract.imageSize)
        for (value, pixel) in zip(instance, input.pixels) {
            XCTAssertEqual(value, Double(pixel) * ModelContract.pixelScale, accuracy: 1e-12)
        }
    }

    /// Pillow's BOX filter (libImaging/Resample.c: box_filter counts -0.5 < x <= 0.5, and
    /// precompute_coeffs' window); the 3 -> 2 expectation is what Pillow 13 computes
    /// (Image.resize((2, 1), BOX) of [0, 10, 100] is [5, 100]): the middle pixel, on the boundary,
    /// belongs to the first output pixel only.
    func testBoxWeightsAverageWhenShrinkingAndCopyWhenEnlarging() {
        let halve = DigitPreprocessor.boxWeights(inputSize: 4, outputSize: 2)
        XCTAssertEqual(halve.map { $0.first }, [0, 2])
        XCTAssertEqual(halve.map { $0.weights }, [[0.5, 0.5], [0.5, 0.5]])
        let double = DigitPreprocessor.boxWeights(inputSize: 2, outputSize: 4)
        XCTAssertEqual(double.map { $0.first }, [0, 0, 1, 1])
        XCTAssertTrue(double.allSatisfy { $0.weights == [1] })
        let threeToTwo = DigitPreprocessor.boxWeights(inputSize: 3, outputSize: 2)
        XCTAssertEqual(threeToTwo.map { $0.first }, [0, 2])
        XCTAssertEqual(threeToTwo.map { $0.weights }, [[0.5, 0.5], [1]])
    }
}
