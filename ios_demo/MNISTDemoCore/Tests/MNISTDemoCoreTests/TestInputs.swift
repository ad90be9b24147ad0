// TestInputs.swift — files and URLs the Python test harness (tests/ios/) hands the Swift tests.
//
// pytest writes JSON files and starts `tfship serve`, then runs `swift test` with their paths and
// URL in the environment. Run alone (e.g. `swift test` on a Mac), a test that needs one of them is
// skipped with the variable's name; the pytest wrapper fails on any such skip.

import Foundation
import XCTest

enum TestInputs {
    /// Fresh preprocessing cases from clients/images.py (else the bundled copy is used).
    static let preprocessingCases = "TFSHIP_PREPROCESSING_CASES"
    /// The exported model's spec: the CoreML classifier's contract and the SavedModel's signatures.
    static let modelSpec = "TFSHIP_MODEL_SPEC"
    /// Base URL of a live `tfship serve` REST port, e.g. http://127.0.0.1:PORT.
    static let serverURL = "TFSHIP_SERVER_URL"
    /// The shared digit images, decoded to grayscale, with the Python client's answers for them.
    static let digits = "TFSHIP_DIGITS"

    /// The variable's value, or a skip naming it.
    static func value(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw XCTSkip("\(variable) is not set: pytest tests/ios sets it (see ios_demo/README.md)")
        }
        return value
    }

    /// The JSON file the variable names, decoded.
    static func decode<T: Decodable>(_ type: T.Type, fromFileIn variable: String) throws -> T {
        try decode(type, from: URL(fileURLWithPath: value(variable)))
    }

    static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            XCTFail("cannot read \(url.path): \(error.localizedDescription)")
            throw error
        }
        return try JSONDecoder().decode(type, from: data)
    }
}
