// DrawingCanvas.swift — a square black canvas you draw on with a finger, white strokes.

import MNISTDemoCore
import SwiftUI

struct DrawingCanvas: View {
    /// Points are stored in unit coordinates (0...1), the canvas draws them at its current size.
    @Binding var strokes: [Stroke]
    @State private var isDrawing = false

    var body: some View {
        GeometryReader { geometry in
            let size = geometry.size
            Canvas { context, canvasSize in
                context.stroke(
                    path(in: canvasSize),
                    with: .color(.white),
                    style: StrokeStyle(
                        lineWidth: min(canvasSize.width, canvasSize.height) * CGFloat(StrokeRasterizer.lineWidthFraction),
                        lineCap: .round, lineJoin: .round))
            }
            .background(Color.black)
            .contentShape(Rectangle())
            .gesture(
                DragGesture(minimumDistance: 0, coordinateSpace: .local)
                    .onChanged { value in
                        let point = StrokePoint(x: Double(clamp(value.location.x / max(size.width, 1))),
                                                y: Double(clamp(value.location.y / max(size.height, 1))))
                        if isDrawing, !strokes.isEmpty {
                            strokes[strokes.count - 1].points.append(point)
                        } else {
                            isDrawing = true
                            strokes.append(Stroke(points: [point]))
                        }
                    }
                    .onEnded { _ in isDrawing = false }
            )
        }
        .aspectRatio(1, contentMode: .fit)
        .clipShape(RoundedRectangle(cornerRadius: 12))
        .accessibilityLabel("Drawing canvas")
    }

    /// The same geometry StrokeRasterizer draws into the bitmap, scaled to the screen.
    private func path(in size: CGSize) -> Path {
        var path = Path()
        for stroke in strokes {
            let points = stroke.points.map { CGPoint(x: CGFloat($0.x) * size.width, y: CGFloat($0.y) * size.height) }
            guard let first = points.first else { continue }
            if points.count == 1 {
                path.move(to: first)
                path.addLine(to: first)
            } else {
                path.addLines(points)
            }
        }
        return path
    }

    private func clamp(_ value: CGFloat) -> CGFloat { min(max(value, 0), 1) }
}
