// PredictionTests.swift — ranking of scores and the server request's URL.

import XCTest
@testable import MNISTDemoCore

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
        XCTAssertEqual(prediction.probability(of: ModelContract.labels[1]), 0.3)
        XCTAssertNil(prediction.probability(of: "not a label"))
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
    }

    func testAURLWithoutHTTPSchemeIsRefused() {
        for typed in ["localhost:8501", "ftp://localhost:8501", "http://", ""] {
            XCTAssertThrowsError(try ServerClassifier(baseURL: typed).predictURL(), typed) { error in
                XCTAssertEqual(error as? ServerError, .badURL(typed))
            }
        }
    }

    func testAModelNameIsEscapedIntoOnePathSegment() throws {
        let url = try ServerClassifier(baseURL: ModelContract.Server.defaultURL, modelName: "a b/c").predictURL()
        XCTAssertEqual(url.absoluteString, ModelContract.Server.defaultURL
            + String(format: ModelContract.Server.predictPathFormat, "a%20b%2Fc"))
    }
}
