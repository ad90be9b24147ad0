// PredictAPI.swift — TF Serving's REST predict API as JSON: the request body and the answer's
// parsing, apart from the network so both are tested without a server (ServerClassifier sends).

import Foundation

public enum ServerError: LocalizedError, Equatable {
    case badURL(String)
    case badImage(index: Int, width: Int, height: Int)
    case unreachable(url: String, reason: String)
    case status(Int, String)
    case unexpectedResponse(String)

    public var errorDescription: String? {
        switch self {
        case .badURL(let url):
            return "'\(url)' is not an http(s) URL; set the server URL in Settings (e.g. \(ModelContract.Server.defaultURL))."
        case .badImage(let index, let width, let height):
            return "Image \(index) is \(width)x\(height); the model takes "
                + "\(ModelContract.imageSize)x\(ModelContract.imageSize) (use DigitPreprocessor.modelInput)."
        case .unreachable(let url, let reason):
            return "Could not reach the server at \(url): \(reason)"
        case .status(let code, let message):
            return "Server answered HTTP \(code): \(message)"
        case .unexpectedResponse(let detail):
            return "Unexpected server response: \(detail)"
        }
    }
}

public enum PredictAPI {
    /// {"signature_name": "predict_images", "instances": [[784 values in 0...1], ...]}: the row
    /// format, one instance per image.
    public static func requestBody(instances: [[Double]],
                                   signatureName: String = ModelContract.Server.signatureName) throws -> Data {
        let body: [String: Any] = [
            ModelContract.Server.signatureKey: signatureName,
            ModelContract.Server.instancesKey: instances,
        ]
        return try JSONSerialization.data(withJSONObject: body)
    }

    /// One Prediction per instance sent, from the answer to a predict request.
    /// 200 carries {"predictions": [[K scores], ...]} when the signature has one output, or
    /// {"predictions": [{"scores": [K scores], ...}, ...]} when it has several (TF Serving names
    /// them then). Anything else is a ServerError saying what came instead.
    public static func predictions(from data: Data, statusCode: Int, instances: Int,
                                   labels: [String] = ModelContract.labels,
                                   outputName: String = ModelContract.Server.outputName) throws -> [Prediction] {
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard statusCode == 200 else {
            let message = json?[ModelContract.Server.errorKey] as? String
                ?? String(decoding: data.prefix(300), as: UTF8.self)
            throw ServerError.status(statusCode, message)
        }
        guard let json else {
            throw ServerError.unexpectedResponse("the body is not a JSON object: "
                + String(decoding: data.prefix(100), as: UTF8.self))
        }
        let key = ModelContract.Server.predictionsKey
        guard let rows = json[key] as? [Any] else {
            throw ServerError.unexpectedResponse("no '\(key)' list (keys: \(json.keys.sorted()))")
        }
        guard rows.count == instances else {
            throw ServerError.unexpectedResponse("\(rows.count) predictions for \(instances) images")
        }
        return try rows.enumerated().map { index, row in
            let scores = try scoreList(row, index: index, outputName: outputName)
            guard scores.count == labels.count else {
                throw ServerError.unexpectedResponse(
                    "prediction \(index) has \(scores.count) scores for \(labels.count) labels")
            }
            return Prediction(scoresInLabelOrder: scores, labels: labels)
        }
    }

    private static func scoreList(_ row: Any, index: Int, outputName: String) throws -> [Double] {
        if let named = row as? [String: Any] {
            guard let output = named[outputName] else {
                throw ServerError.unexpectedResponse(
                    "prediction \(index) has outputs \(named.keys.sorted()), not '\(outputName)'")
            }
            return try scoreList(output, index: index, outputName: outputName)
        }
        guard let values = row as? [Any], let scores = numbers(values) else {
            throw ServerError.unexpectedResponse("prediction \(index) is not a list of numbers")
        }
        return scores
    }

    /// JSONSerialization gives every number as an NSNumber, which casts to Double whether the text
    /// was 1 or 1.0 (on Apple's Foundation and Linux's alike); anything else is not a score.
    private static func numbers(_ values: [Any]) -> [Double]? {
        var out: [Double] = []
        out.reserveCapacity(values.count)
        for value in values {
            guard let number = value as? Double else { return nil }
            out.append(number)
        }
        return out
    }
}
