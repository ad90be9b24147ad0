// ResultCard.swift — one classifier's answer: label, confidence and a top-3 bar chart.

import Charts
import MNISTDemoCore
import SwiftUI

struct ResultCard: View {
    let title: String
    let outcome: Outcome?
    /// How many of the most probable labels the chart shows.
    var topCount = 3

    var body: some View {
        VStack(alignment: .leading, spacing: 8) {
            Text(title).font(.headline)
            switch outcome {
            case nil:
                Text("No answer yet").foregroundStyle(.secondary)
            case .failure(let message)?:
                Text(message).font(.footnote).foregroundStyle(.red)
            case .prediction(let prediction)?:
                HStack(alignment: .firstTextBaseline) {
                    Text(prediction.label).font(.system(size: 48, weight: .bold, design: .rounded))
                    Text(prediction.confidence, format: .percent.precision(.fractionLength(1)))
                        .foregroundStyle(.secondary)
                }
                Chart(prediction.top(topCount)) { score in
                    BarMark(x: .value("Probability", score.probability),
                            y: .value("Digit", score.label))
                        .annotation(position: .trailing) {
                            Text(score.probability, format: .percent.precision(.fractionLength(0)))
                                .font(.caption2)
                        }
                }
                .chartXScale(domain: 0.0...1.0)
                .frame(height: 90)
            }
        }
        .padding()
        .frame(maxWidth: .infinity, alignment: .leading)
        .background(.thinMaterial, in: RoundedRectangle(cornerRadius: 12))
    }
}

/// The 28x28 image the classifiers got, enlarged without smoothing so every pixel shows.
struct ModelInputPreview: View {
    let image: GrayImage

    var body: some View {
        if let cgImage = try? image.cgImage() {
            Image(decorative: cgImage, scale: 1)
                .interpolation(.none)
                .resizable()
                .frame(width: 56, height: 56)
                .border(Color.secondary)
                .accessibilityLabel("What the model sees")
        }
    }
}
