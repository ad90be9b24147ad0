// StrokeRasterizer.swift — draws the finger strokes into a grayscale bitmap.

import CoreGraphics

/// A finger stroke in canvas coordinates (points, origin top-left, as SwiftUI reports them).
struct Stroke: Equatable {
    var points: [CGPoint]
}

enum StrokeRasterizer {
    /// The bitmap's side in pixels: 10x MNIST's 28 keeps the digit's shape well above the
    /// 20 px it is shrunk to, so the area averaging has real detail to average.
    static let bitmapSide = 280
    /// Pen width relative to the canvas side. MNIST strokes are ~2-3 px of a 20 px digit;
    /// a digit drawn across most of the canvas then gets a similar relative thickness.
    static let lineWidthFraction: CGFloat = 0.07

    /// White strokes on black, `bitmapSide` square, row 0 at the top (step 1 of the preprocessing:
    /// grayscale 0...255, already light on dark).
    static func rasterize(_ strokes: [Stroke], canvasSize: CGSize) throws -> GrayImage {
        guard canvasSize.width > 0, canvasSize.height > 0 else { throw GrayImageError.emptyCanvas }
        let side = bitmapSide
        var bytes = [UInt8](repeating: 0, count: side * side)  // zero is black: the background
        let drawn: Bool = bytes.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(data: buffer.baseAddress, width: side, height: side,
                                          bitsPerComponent: 8, bytesPerRow: side,
                                          space: CGColorSpaceCreateDeviceGray(),
                                          bitmapInfo: CGImageAlphaInfo.none.rawValue) else {
                return false
            }
            // CoreGraphics puts the origin bottom-left; flip so canvas points map as drawn.
            context.translateBy(x: 0, y: CGFloat(side))
            context.scaleBy(x: CGFloat(side) / canvasSize.width, y: -CGFloat(side) / canvasSize.height)
            context.setStrokeColor(gray: 1, alpha: 1)
            context.setLineWidth(min(canvasSize.width, canvasSize.height) * lineWidthFraction)
            context.setLineCap(.round)
            context.setLineJoin(.round)
            for stroke in strokes {
                addPath(of: stroke, to: context)
            }
            context.strokePath()
            return true
        }
        guard drawn else { throw GrayImageError.cannotCreateContext }
        return GrayImage(width: side, height: side, pixels: bytes.map { Float($0) })
    }

    /// A tap (one point) becomes a dot: a zero-length line, which round caps draw as a disc.
    private static func addPath(of stroke: Stroke, to context: CGContext) {
        guard let first = stroke.points.first else { return }
        if stroke.points.count == 1 {
            context.move(to: first)
            context.addLine(to: first)
        } else {
            context.addLines(between: stroke.points)
        }
    }
}
