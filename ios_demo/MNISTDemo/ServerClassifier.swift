// ServerClassifier.swift — asks tfship's server (TF Serving's REST API) about the same 28x28 image.

import Foundation

enum ServerError: LocalizedError {
    case badURL(String)
    case status(Int, String)
    case unexpectedResponse(String)

    var errorDescription: String? {
        switch self {
        case .badURL(let url):
            return "'\(url)' is not an http(s) URL; set the server URL in Settings (e.g. \(ModelContract.Server.defaultURL))."
        case .status(let code, let message):
            return "Server answered HTTP \(code): \(message)"
        case .unexpectedResponse(let detail):
            return "Unexpected server response: \(detail)"
        }
    }
}

struct ServerClassifier {
    /// The server's base URL as typed in Settings, e.g. http://localhost:8501.
    let baseURL: String
    var session: URLSession = .shared
    /// A classification is interactive; fail fast when no server is listening.
    var timeout: TimeInterval = 10

    func predictURL() throws -> URL {
        var base = baseURL.trimmingCharacters(in: .whitespacesAndNewlines)
        while base.hasSuffix("/") {
            base.removeLast()
        }
        let path = String(format: ModelContract.Server.predictPathFormat, ModelContract.Server.modelName)
        guard let url = URL(string: base + path), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host != nil else {
            throw ServerError.badURL(baseURL)
        }
        return url
    }

    /// POST {"signature_name": "predict_images", "instances": [[784 values in 0...1]]}
    /// and read {"predictions": [[10 scores]]}, the scores in ModelContract.labels order.
    func classify(_ modelInput: GrayImage) async throws -> Prediction {
        var request = URLRequest(url: try predictURL(), timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let body: [String: Any] = [
            ModelContract.Server.signatureKey: ModelContract.Server.signatureName,
            ModelContract.Server.instancesKey: [DigitPreprocessor.serverInstance(modelInput)],
        ]
        request.httpBody = try JSONSerialization.data(withJSONObject: body)

        let (data, response) = try await session.data(for: request)
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        let code = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard code == 200 else {
            let message = json?[ModelContract.Server.errorKey] as? String
                ?? String(decoding: data.prefix(300), as: UTF8.self)
            throw ServerError.status(code, message)
        }
        guard let rows = json?[ModelContract.Server.predictionsKey] as? [[NSNumber]], let scores = rows.first else {
            throw ServerError.unexpectedResponse("no '\(ModelContract.Server.predictionsKey)' list of score lists")
        }
        guard scores.count == ModelContract.labels.count else {
            throw ServerError.unexpectedResponse(
                "\(scores.count) scores for \(ModelContract.labels.count) labels")
        }
        return Prediction(scoresInLabelOrder: scores.map { $0.doubleValue })
    }
}
