// ClassificationSession.swift — the screen's state: strokes in, answers from device and server out.

import Foundation
import MNISTDemoCore

enum Outcome: Equatable {
    case prediction(Prediction)
    case failure(String)
}

@MainActor
final class ClassificationSession: ObservableObject {
    /// Strokes in unit coordinates (0...1 across the square canvas), so any canvas size works.
    @Published var strokes: [Stroke] = []
    @Published private(set) var onDevice: Outcome?
    @Published private(set) var server: Outcome?
    /// The 28x28 image both classifiers got: shown so the user sees what the model sees.
    @Published private(set) var modelInput: GrayImage?
    @Published private(set) var hint: String?
    @Published private(set) var isClassifying = false

    private let classifier: Result<DigitClassifier, Error>

    init(loadClassifier: () throws -> DigitClassifier = { try DigitClassifier() }) {
        classifier = Result(catching: loadClassifier)
        if case .failure(let error) = classifier {
            hint = error.localizedDescription
        }
    }

    func clear() {
        strokes = []
        onDevice = nil
        server = nil
        modelInput = nil
        hint = nil
    }

    func classify(route: OnDeviceRoute, compareWithServer: Bool, serverURL: String) async {
        let drawing = StrokeRasterizer.rasterize(strokes)
        guard let image = DigitPreprocessor.modelInput(from: drawing) else {
            // No ink: classifying a blank canvas would only show the model's guess for nothing.
            onDevice = nil
            server = nil
            modelInput = nil
            hint = "Draw a digit first."
            return
        }
        modelInput = image
        hint = nil
        isClassifying = true
        defer { isClassifying = false }

        server = nil
        // On device first: it answers in milliseconds, the server may take up to its timeout.
        onDevice = await classifyOnDevice(image, route: route)
        if compareWithServer {
            do {
                server = .prediction(try await ServerClassifier(baseURL: serverURL).classify(image))
            } catch {
                server = .failure(error.localizedDescription)
            }
        }
    }

    private func classifyOnDevice(_ image: GrayImage, route: OnDeviceRoute) async -> Outcome {
        let classifier: DigitClassifier
        switch self.classifier {
        case .success(let loaded): classifier = loaded
        case .failure(let error): return .failure(error.localizedDescription)
        }
        // Prediction takes a few milliseconds, but keep it off the main thread all the same.
        let task = Task.detached(priority: .userInitiated) { () -> Outcome in
            do {
                return .prediction(try classifier.classify(image, route: route))
            } catch {
                return .failure(error.localizedDescription)
            }
        }
        return await task.value
    }
}
