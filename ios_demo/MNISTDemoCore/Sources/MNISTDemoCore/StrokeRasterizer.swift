// StrokeRasterizer.swift — draws the finger strokes into a grayscale bitmap, in pure Swift.
//
// The screen shows the strokes with SwiftUI (MNISTDemo/DrawingCanvas.swift); what the model gets
// is drawn here, with the same pen, so it is the same on every platform and testable on Linux.

/// A point in unit canvas coordinates: (0, 0) is the top-left corner, (1, 1) the bottom-right.
public struct StrokePoint: Equatable, Sendable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// One finger stroke: the points the finger passed, in order.
public struct Stroke: Equatable, Sendable {
    public var points: [StrokePoint]

    public init(points: [StrokePoint]) {
        self.points = points
    }
}

public enum StrokeRasterizer {
    /// The bitmap's side in pixels: 10x MNIST's 28 keeps the digit's shape well above the
    /// 20 px it is shrunk to, so the area averaging has real detail to average.
    public static let bitmapSide = 280
    /// Pen width relative to the canvas side. MNIST strokes are ~2-3 px of a 20 px digit;
    /// a digit drawn across most of the canvas then gets a similar relative thickness.
    public static let lineWidthFraction = 0.07

    /// White strokes on black, `side` pixels square, row 0 at the top: step 1 of the preprocessing
    /// (grayscale 0...255, already light on dark). Round caps and joins: a tap draws a dot.
    /// Antialiased: a pixel is as bright as the share of it the pen covers, estimated from the
    /// distance of its centre to the stroke, then rounded to 8 bits like any bitmap (so a drawing
    /// saved as a PNG and sent with `tfship predict` is the same pixels).
    public static func rasterize(_ strokes: [Stroke], side: Int = bitmapSide,
                                 lineWidthFraction: Double = lineWidthFraction) -> GrayImage {
        precondition(side > 0, "the bitmap needs a positive side")
        var coverage = [Double](repeating: 0, count: side * side)
        let radius = Double(side) * lineWidthFraction / 2
        for stroke in strokes {
            let points = stroke.points.map { (x: $0.x * Double(side), y: $0.y * Double(side)) }
            guard let first = points.first else { continue }
            // A single point is a zero-length segment: round caps make it a disc.
            let segments = points.count == 1 ? [(first, first)] : Array(zip(points, points.dropFirst()))
            for (a, b) in segments {
                cover(from: a, to: b, radius: radius, side: side, into: &coverage)
            }
        }
        return GrayImage(width: side, height: side, pixels: coverage.map { Float($0 * 255) }).quantized()
    }

    /// Raises each pixel near the segment a-b to the pen's coverage of it (the maximum, so where
    /// segments overlap at a joint the ink does not add up).
    private static func cover(from a: (x: Double, y: Double), to b: (x: Double, y: Double), radius: Double,
                              side: Int, into coverage: inout [Double]) {
        let reach = radius + 1
        let minX = max(0, Int((min(a.x, b.x) - reach).rounded(.down)))
        let maxX = min(side - 1, Int((max(a.x, b.x) + reach).rounded(.up)))
        let minY = max(0, Int((min(a.y, b.y) - reach).rounded(.down)))
        let maxY = min(side - 1, Int((max(a.y, b.y) + reach).rounded(.up)))
        guard minX <= maxX, minY <= maxY else { return }
        for y in minY...maxY {
            for x in minX...maxX {
                let d = distance(from: (Double(x) + 0.5, Double(y) + 0.5), toSegment: a, b)
                // The pen's edge crosses the pixel over one pixel's width: full inside, none outside.
                let covered = min(max(radius - d + 0.5, 0), 1)
                let i = y * side + x
                coverage[i] = max(coverage[i], covered)
            }
        }
    }

    static func distance(from p: (x: Double, y: Double), toSegment a: (x: Double, y: Double),
                         _ b: (x: Double, y: Double)) -> Double {
        let dx = b.x - a.x, dy = b.y - a.y
        let lengthSquared = dx * dx + dy * dy
        let t = lengthSquared == 0 ? 0 : min(max(((p.x - a.x) * dx + (p.y - a.y) * dy) / lengthSquared, 0), 1)
        let cx = a.x + t * dx - p.x, cy = a.y + t * dy - p.y
        return (cx * cx + cy * cy).squareRoot()
    }
}
