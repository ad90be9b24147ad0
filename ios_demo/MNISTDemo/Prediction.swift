// Prediction.swift — one classifier's answer, whoever computed it (device or server).

import Foundation

struct Prediction: Equatable {
    struct Score: Identifiable, Equatable {
        let label: String
        let probability: Double
        var id: String { label }
    }

    /// Every label's probability, most probable first.
    let scores: [Score]

    /// Ties keep the label order, so the same numbers always give the same answer.
    init(probabilities: [String: Double], labelOrder: [String] = ModelContract.labels) {
        let rank = Dictionary(uniqueKeysWithValues: labelOrder.enumerated().map { ($1, $0) })
        scores = probabilities
            .map { Score(label: $0.key, probability: $0.value) }
            .sorted {
                $0.probability != $1.probability
                    ? $0.probability > $1.probability
                    : (rank[$0.label] ?? Int.max, $0.label) < (rank[$1.label] ?? Int.max, $1.label)
            }
    }

    /// Scores listed in label order, as TF Serving's predict API returns them.
    init(scoresInLabelOrder values: [Double], labels: [String] = ModelContract.labels) {
        self.init(probabilities: Dictionary(uniqueKeysWithValues: zip(labels, values)), labelOrder: labels)
    }

    var label: String { scores.first?.label ?? "" }
    var confidence: Double { scores.first?.probability ?? 0 }

    func top(_ count: Int) -> [Score] { Array(scores.prefix(count)) }
}
