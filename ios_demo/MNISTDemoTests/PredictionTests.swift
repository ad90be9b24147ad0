// PredictionTests.swift — ranking of scores and the server request's URL.

import XCTest
@testable import MNISTDemo

final class PredictionTests: XCTestCase {
    func testScoresAreRankedAndTopThreeTaken() {
        var scores = Array(repeating: 0.0, count: ModelContract.labels.count)
        scores[7] = 0.6
        scores[1] = 0.3
        scores[9] = 0.1
        let prediction = Prediction(scoresInLabelOrder: scores)
        XCTAssertEqual(prediction.label, ModelContract.labels[7])
        XCTAssertEqual(prediction.confidence, 0.6)
        XCTAssertEqual(prediction.top(3).map(\.label), [7, 1, 9].map { ModelContract.labels[$0] })
    }

    func testTiesKeepLabelOrder() {
        let even = Array(repeating: 0.1, count: ModelContract.labels.count)
        XCTAssertEqual(Prediction(scoresInLabelOrder: even).scores.map(\.label), ModelContract.labels)
    }

    func testPredictURLFollowsTheRESTAPI() throws {
        // Blanks and a trailing slash, as typed into Settings, are tolerated.
        let url = try ServerClassifier(baseURL: " \(ModelContract.Server.defaultURL)/ ").predictURL()
        let expectedPath = String(format: ModelContract.Server.predictPathFormat, ModelContract.Server.modelName)
        XCTAssertEqual(url.absoluteString, ModelContract.Server.defaultURL + expectedPath)
        XCTAssertThrowsError(try ServerClassifier(baseURL: "localhost:8501").predictURL())
    }
}
