// Prediction.swift — one classifier's answer, whoever computed it (device or server).

public struct Prediction: Equatable, Sendable {
    public struct Score: Identifiable, Equatable, Sendable {
        public let label: String
        public let probability: Double
        public var id: String { label }

        public init(label: String, probability: Double) {
            self.label = label
            self.probability = probability
        }
    }

    /// Every label's probability, most probable first.
    public let scores: [Score]

    /// Ties keep the label order, so the same numbers always give the same answer.
    public init(probabilities: [String: Double], labelOrder: [String] = ModelContract.labels) {
        let rank = Dictionary(labelOrder.enumerated().map { ($1, $0) }) { first, _ in first }
        scores = probabilities
            .map { Score(label: $0.key, probability: $0.value) }
            .sorted {
                $0.probability != $1.probability
                    ? $0.probability > $1.probability
                    : (rank[$0.label] ?? Int.max, $0.label) < (rank[$1.label] ?? Int.max, $1.label)
            }
    }

    /// Scores listed in label order, as TF Serving's predict API returns them.
    /// `values` and `labels` must have the same count (PredictAPI.predictions checks it).
    public init(scoresInLabelOrder values: [Double], labels: [String] = ModelContract.labels) {
        precondition(values.count == labels.count, "\(values.count) scores for \(labels.count) labels")
        self.init(probabilities: Dictionary(zip(labels, values)) { first, _ in first }, labelOrder: labels)
    }

    public var label: String { scores.first?.label ?? "" }
    public var confidence: Double { scores.first?.probability ?? 0 }

    /// The probability of `label`, nil when the prediction has no such label.
    public func probability(of label: String) -> Double? {
        scores.first { $0.label == label }?.probability
    }

    public func top(_ count: Int) -> [Score] { Array(scores.prefix(count)) }
}
