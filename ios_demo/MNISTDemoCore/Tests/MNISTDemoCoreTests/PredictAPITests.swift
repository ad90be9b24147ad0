// PredictAPITests.swift — the predict request's JSON and the parsing of every kind of answer.
// The answers' shapes follow TF Serving's REST API (tensorflow_serving/g3doc/api_rest.md, "Predict
// API": the row format answers {"predictions": ...}, the named form when a signature has several
// outputs; errors come as {"error": "..."}). The live server test checks the real thing.

import Foundation
import XCTest
@testable import MNISTDemoCore

final class PredictAPITests: XCTestCase {
    private typealias Server = ModelContract.Server

    private func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object)
    }

    private func oneHot(_ index: Int) -> [Double] {
        (0..<ModelContract.labels.count).map { $0 == index ? 0.9 : 0.1 / Double(ModelContract.labels.count - 1) }
    }

    func testTheRequestBodyIsTheRowFormat() throws {
        let instances = [[0.0, 0.5, 1.0], [0.25, 0.75, 1.0]]
        let body = try PredictAPI.requestBody(instances: instances)
        let decoded = try XCTUnwrap(JSONSerialization.jsonObject(with: body) as? [String: Any])
        XCTAssertEqual(Set(decoded.keys), [Server.signatureKey, Server.instancesKey])
        XCTAssertEqual(decoded[Server.signatureKey] as? String, Server.signatureName)
        let rows = try XCTUnwrap(decoded[Server.instancesKey] as? [[Any]])
        XCTAssertEqual(rows.map { $0.map { ($0 as? NSNumber)?.doubleValue ?? .nan } }, instances)
    }

    func testOneUnnamedOutputGivesOnePredictionPerImage() throws {
        let data = try json([Server.predictionsKey: [oneHot(3), oneHot(8)]])
        let predictions = try PredictAPI.predictions(from: data, statusCode: 200, instances: 2)
        XCTAssertEqual(predictions.map(\.label), [ModelContract.labels[3], ModelContract.labels[8]])
        XCTAssertEqual(predictions[0].confidence, 0.9, accuracy: 1e-12)
    }

    func testIntegerScoresAreNumbersToo() throws {
        let scores = (0..<ModelContract.labels.count).map { $0 == 5 ? 1 : 0 }
        let data = try json([Server.predictionsKey: [scores]])
        XCTAssertEqual(try PredictAPI.predictions(from: data, statusCode: 200, instances: 1)[0].label,
                       ModelContract.labels[5])
    }

    func testSeveralNamedOutputsArePickedByName() throws {
        let row: [String: Any] = [Server.outputName: oneHot(4), "logits": oneHot(1)]
        let data = try json([Server.predictionsKey: [row]])
        XCTAssertEqual(try PredictAPI.predictions(from: data, statusCode: 200, instances: 1)[0].label,
                       ModelContract.labels[4])
        let missing = try json([Server.predictionsKey: [["logits": oneHot(1)]]])
        assertUnexpected(try PredictAPI.predictions(from: missing, statusCode: 200, instances: 1),
                         mentions: "not '\(Server.outputName)'")
    }

    func testAnErrorAnswerCarriesTheServersMessage() throws {
        let data = try json([Server.errorKey: "Servable not found for request: Latest(nope)"])
        XCTAssertThrowsError(try PredictAPI.predictions(from: data, statusCode: 404, instances: 1)) { error in
            XCTAssertEqual(error as? ServerError, .status(404, "Servable not found for request: Latest(nope)"))
        }
    }

    func testAnErrorThatIsNotJSONShowsTheBodysStart() {
        let data = Data(("<html>" + String(repeating: "x", count: 1000)).utf8)
        XCTAssertThrowsError(try PredictAPI.predictions(from: data, statusCode: 502, instances: 1)) { error in
            guard case .status(502, let message)? = error as? ServerError else {
                return XCTFail("expected HTTP 502, got \(error)")
            }
            XCTAssertTrue(message.hasPrefix("<html>"))
            XCTAssertEqual(message.count, 300)
        }
    }

    func testMalformedAnswersAreRefusedSayingWhy() throws {
        let cases: [(String, Data, String)] = [
            ("not JSON", Data("oops".utf8), "not a JSON object"),
            ("no predictions", try json(["outputs": [oneHot(1)]]), "no '\(Server.predictionsKey)' list"),
            ("too few rows", try json([Server.predictionsKey: [oneHot(1)]]), "1 predictions for 2 images"),
            ("short row", try json([Server.predictionsKey: [[0.5, 0.5], oneHot(1)]]), "2 scores for 10 labels"),
            ("strings", try json([Server.predictionsKey: [["a"], oneHot(1)]]), "not a list of numbers"),
        ]
        for (name, data, words) in cases {
            assertUnexpected(try PredictAPI.predictions(from: data, statusCode: 200, instances: 2),
                             mentions: words, name)
        }
    }

    func testAnImageOfTheWrongSizeIsRefusedBeforeSending() async {
        let classifier = ServerClassifier(baseURL: ModelContract.Server.defaultURL)
        do {
            _ = try await classifier.classify([GrayImage(width: 28, height: 28), GrayImage(width: 20, height: 28)])
            XCTFail("a 20x28 image was sent")
        } catch {
            XCTAssertEqual(error as? ServerError, .badImage(index: 1, width: 20, height: 28))
        }
    }

    private func assertUnexpected<T>(_ expression: @autoclosure () throws -> T, mentions words: String,
                                     _ name: String = "", line: UInt = #line) {
        XCTAssertThrowsError(try expression(), name, line: line) { error in
            guard case .unexpectedResponse(let detail)? = error as? ServerError else {
                return XCTFail("\(name): expected unexpectedResponse, got \(error)", line: line)
            }
            XCTAssertTrue(detail.contains(words), "\(name): '\(detail)' does not say '\(words)'", line: line)
        }
    }
}
