// StrokeRasterizerTests.swift — the pen's geometry: where ink lands, how wide, how bright.

import XCTest
@testable import MNISTDemoCore

final class StrokeRasterizerTests: XCTestCase {
    private let side = StrokeRasterizer.bitmapSide
    private var radius: Double { Double(side) * StrokeRasterizer.lineWidthFraction / 2 }

    private func stroke(_ points: (Double, Double)...) -> Stroke {
        Stroke(points: points.map { StrokePoint(x: $0.0, y: $0.1) })
    }

    /// Ink in pixel units: each pixel counts as the share of it that is lit.
    private func ink(_ image: GrayImage) -> Double {
        image.pixels.reduce(0) { $0 + Double($1) } / 255
    }

    func testNoStrokesIsABlackBitmap() {
        let image = StrokeRasterizer.rasterize([])
        XCTAssertEqual(image.width, side)
        XCTAssertEqual(image.height, side)
        XCTAssertEqual(image.maximum, 0)
        XCTAssertNil(DigitPreprocessor.modelInput(from: image))
    }

    func testATapIsADiscOfThePensWidth() {
        let image = StrokeRasterizer.rasterize([stroke((0.5, 0.5))])
        // Antialiasing spreads the edge but keeps the area: pi r^2 within 1%.
        XCTAssertEqual(ink(image), Double.pi * radius * radius, accuracy: 0.01 * Double.pi * radius * radius)
        XCTAssertEqual(image[side / 2, side / 2], 255)
        let centre = DigitPreprocessor.centreOfMass(image)
        // Pixel-index coordinates: the unit point 0.5 is the corner between pixels 139 and 140.
        XCTAssertEqual(centre.x, Double(side) / 2 - 0.5, accuracy: 0.01)
        XCTAssertEqual(centre.y, Double(side) / 2 - 0.5, accuracy: 0.01)
    }

    func testALineIsAsThickAsThePenAndRoundCapped() {
        let image = StrokeRasterizer.rasterize([stroke((0.2, 0.5), (0.8, 0.5))])
        let length = 0.6 * Double(side)
        let expected = length * 2 * radius + Double.pi * radius * radius  // body + two half-disc caps
        XCTAssertEqual(ink(image), expected, accuracy: 0.01 * expected)
        let column = (0..<side).reduce(0.0) { $0 + Double(image[side / 2, $1]) } / 255
        XCTAssertEqual(column, 2 * radius, accuracy: 0.1)
        // Round caps reach exactly one radius past the ends.
        XCTAssertGreaterThan(image[Int(0.2 * Double(side) - radius + 1), side / 2], 0)
        XCTAssertEqual(image[Int(0.2 * Double(side) - radius - 1), side / 2], 0)
    }

    func testRowZeroIsTheTopOfTheCanvas() {
        let image = StrokeRasterizer.rasterize([stroke((0.1, 0.1), (0.9, 0.1))])
        let centre = DigitPreprocessor.centreOfMass(image)
        XCTAssertEqual(centre.y, 0.1 * Double(side) - 0.5, accuracy: 0.01)
    }

    func testOverlappingInkDoesNotAddUpAndPixelsAreEightBit() {
        // Back and forth over the same line, plus a second stroke crossing it.
        let image = StrokeRasterizer.rasterize([stroke((0.2, 0.5), (0.8, 0.5), (0.2, 0.5)),
                                                stroke((0.5, 0.2), (0.5, 0.8))])
        XCTAssertEqual(image.maximum, 255)
        XCTAssertTrue(image.pixels.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() })
        let once = StrokeRasterizer.rasterize([stroke((0.2, 0.5), (0.8, 0.5)), stroke((0.5, 0.2), (0.5, 0.8))])
        XCTAssertEqual(image, once)
    }

    func testAStrokeOffTheCanvasIsClipped() {
        let image = StrokeRasterizer.rasterize([stroke((-0.5, 0.5), (1.5, 0.5))])
        XCTAssertEqual(image.pixels.count, side * side)
        XCTAssertEqual(image[0, side / 2], 255)
        XCTAssertEqual(image[side - 1, side / 2], 255)
    }

    func testADrawnOneBecomesATwentyPixelTallDigit() throws {
        let drawing = StrokeRasterizer.rasterize([stroke((0.5, 0.15), (0.5, 0.85))])
        let input = try XCTUnwrap(DigitPreprocessor.modelInput(from: drawing))
        let inkRows = (0..<input.height).filter { y in (0..<input.width).contains { input[$0, y] > 0 } }
        XCTAssertEqual(inkRows.count, 20, "MNIST fits each digit into 20 px before centring it")
        // Centred by mass: the bar's centre lands on the middle rows.
        XCTAssertEqual(DigitPreprocessor.centreOfMass(input).y, DigitPreprocessor.massCentre, accuracy: 0.6)
    }
}
