// ServerClassifier.swift — asks tfship's server (TF Serving's REST API) about the same 28x28 image.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking  // URLSession lives here outside Apple's platforms
#endif

public struct ServerClassifier {
    /// The server's base URL as typed in Settings, e.g. http://localhost:8501.
    public let baseURL: String
    public var modelName: String
    public var signatureName: String
    /// The server's scores come in this order.
    public var labels: [String]
    public var session: URLSession
    /// A classification is interactive; fail fast when no server is listening.
    public var timeout: TimeInterval

    public init(baseURL: String, modelName: String = ModelContract.Server.modelName,
                signatureName: String = ModelContract.Server.signatureName,
                labels: [String] = ModelContract.labels, session: URLSession = .shared,
                timeout: TimeInterval = 10) {
        self.baseURL = baseURL
        self.modelName = modelName
        self.signatureName = signatureName
        self.labels = labels
        self.session = session
        self.timeout = timeout
    }

    /// {baseURL}/v1/models/{modelName}:predict; blanks and trailing slashes as typed are dropped.
    public func predictURL() throws -> URL {
        var base = baseURL.trimmingCharacters(in: .whitespacesAndNewlines)
        while base.hasSuffix("/") {
            base.removeLast()
        }
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        let name = modelName.addingPercentEncoding(withAllowedCharacters: allowed) ?? modelName
        let path = String(format: ModelContract.Server.predictPathFormat, name)
        guard let url = URL(string: base + path), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host != nil else {
            throw ServerError.badURL(baseURL)
        }
        return url
    }

    /// One model input (DigitPreprocessor.modelInput: 28x28, 0...255).
    public func classify(_ modelInput: GrayImage) async throws -> Prediction {
        let answers = try await classify([modelInput])
        return answers[0]
    }

    /// Several model inputs in one request; the answers in the same order.
    public func classify(_ modelInputs: [GrayImage]) async throws -> [Prediction] {
        guard !modelInputs.isEmpty else { return [] }
        for (index, image) in modelInputs.enumerated()
        where image.width != ModelContract.imageSize || image.height != ModelContract.imageSize {
            throw ServerError.badImage(index: index, width: image.width, height: image.height)
        }
        let url = try predictURL()
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try PredictAPI.requestBody(instances: modelInputs.map(DigitPreprocessor.serverInstance),
                                                      signatureName: signatureName)
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw ServerError.unreachable(url: url.absoluteString, reason: error.localizedDescription)
        }
        let code = (response as? HTTPURLResponse)?.statusCode ?? 0
        return try PredictAPI.predictions(from: data, statusCode: code, instances: modelInputs.count, labels: labels)
    }
}
