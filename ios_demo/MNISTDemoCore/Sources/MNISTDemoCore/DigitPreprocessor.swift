// DigitPreprocessor.swift — turns a drawing into the 28x28 image the model was trained on.
//
// This is the one place the app's preprocessing lives. It follows, step for step, the Python
// clients' preprocessing of image files (clients/images.py, `preprocess`), so a digit drawn here
// and the same digit saved as a PNG and sent with `tfship predict` give the model the same pixels.
// MNIST's own recipe: digits were fitted into a 20x20 box keeping their aspect ratio, then placed
// in a 28x28 field so that their centre of mass sits at the centre.
// Tests/MNISTDemoCoreTests/PreprocessingParityTests.swift checks this file against cases computed
// by the Python code (tests/ios/preprocessing_cases.py); on Linux pytest runs it with fresh cases.

import Foundation

public enum DigitPreprocessor {
    /// MNIST fitted every digit into a box of this side before centring it.
    public static let digitBoxSide = 20
    /// Pixels brighter than this fraction of the brightest pixel count as ink when cropping.
    public static let inkFraction: Float = 0.1
    /// A border brighter than this on average means dark ink on light paper: invert it.
    public static let lightBackgroundMean: Float = 127
    /// Where the digit's centre of mass goes, in pixel-index coordinates (row 0...27): where
    /// MNIST's own digits have theirs (14.0 +- 0.3 over its test set, measured by the clients).
    public static let massCentre = 14.0

    /// Steps 1-6: the model's input, or nil when there is no ink to classify.
    /// Step 1 (grayscale, 0...255) is the caller's: `image` already is one.
    public static func modelInput(from image: GrayImage) -> GrayImage? {
        guard let centred = centredDigit(from: image) else { return nil }
        // Step 6: CoreML's image input holds 8-bit pixels, so round once here; the server then
        // gets exactly these values divided by 255 (`serverInstance`), the model the same pixels.
        return centred.quantized()
    }

    /// Steps 2-5 in full precision (what the Python clients compute before dividing by 255).
    public static func centredDigit(from image: GrayImage) -> GrayImage? {
        let lightOnDark = invertedIfLightBackground(image)                  // step 2
        guard let box = inkBoundingBox(lightOnDark) else { return nil }     // step 3
        let digit = resized(lightOnDark.cropped(to: box), longerSide: digitBoxSide)  // step 4
        return pastedCentredByMass(digit, side: ModelContract.imageSize)    // step 5
    }

    /// The 784 values the REST API takes for one image: row-major, scaled into 0...1.
    public static func serverInstance(_ modelInput: GrayImage) -> [Double] {
        modelInput.pixels.map { Double($0) * ModelContract.pixelScale }
    }

    // MARK: step 2

    /// Mean of the outermost rows and columns, each pixel counted once.
    public static func borderMean(_ image: GrayImage) -> Float {
        var sum: Float = 0
        var count = 0
        for y in 0..<image.height {
            let edgeRow = y == 0 || y == image.height - 1
            for x in 0..<image.width where edgeRow || x == 0 || x == image.width - 1 {
                sum += image[x, y]
                count += 1
            }
        }
        return sum / Float(count)
    }

    /// The app's canvas is already light on dark; photos and scans of paper are not.
    public static func invertedIfLightBackground(_ image: GrayImage) -> GrayImage {
        guard borderMean(image) > lightBackgroundMean else { return image }
        return GrayImage(width: image.width, height: image.height, pixels: image.pixels.map { 255 - $0 })
    }

    // MARK: step 3

    /// The smallest box holding every pixel brighter than `inkFraction` of the maximum.
    public static func inkBoundingBox(_ image: GrayImage) -> PixelBox? {
        let peak = image.maximum
        guard peak > 0 else { return nil }
        let threshold = inkFraction * peak
        var minX = image.width, minY = image.height, maxX = -1, maxY = -1
        for y in 0..<image.height {
            for x in 0..<image.width where image[x, y] > threshold {
                minX = min(minX, x)
                maxX = max(maxX, x)
                minY = min(minY, y)
                maxY = max(maxY, y)
            }
        }
        return PixelBox(minX: minX, minY: minY, maxX: maxX, maxY: maxY)
    }

    // MARK: step 4

    /// Half-up rounding, as the Python side's floor(x + 0.5); Swift's .rounded() differs at
    /// negative halves and Python's round() rounds halves to even.
    public static func roundHalfUp(_ x: Double) -> Int {
        Int((x + 0.5).rounded(.down))
    }

    /// Resize so the longer side is `longerSide`, keeping the aspect ratio (shorter side at least 1).
    public static func resized(_ image: GrayImage, longerSide: Int) -> GrayImage {
        let longer = Double(max(image.width, image.height))
        let newWidth = max(1, roundHalfUp(Double(image.width) * Double(longerSide) / longer))
        let newHeight = max(1, roundHalfUp(Double(image.height) * Double(longerSide) / longer))
        return boxResampled(image, width: newWidth, height: newHeight)
    }

    /// Area averaging with Pillow's BOX filter (the Python clients' `Image.resize(..., BOX)` on a
    /// float image): separable, horizontal pass then vertical, weights normalised per output pixel.
    public static func boxResampled(_ image: GrayImage, width: Int, height: Int) -> GrayImage {
        let columns = boxWeights(inputSize: image.width, outputSize: width)
        var horizontal = GrayImage(width: width, height: image.height)
        for y in 0..<image.height {
            for (x, taps) in columns.enumerated() {
                horizontal[x, y] = taps.apply { image[$0, y] }
            }
        }
        let rows = boxWeights(inputSize: image.height, outputSize: height)
        var out = GrayImage(width: width, height: height)
        for (y, taps) in rows.enumerated() {
            for x in 0..<width {
                out[x, y] = taps.apply { horizontal[x, $0] }
            }
        }
        return out
    }

    /// Which input pixels feed one output pixel, and how much.
    public struct Taps: Equatable, Sendable {
        public let first: Int
        public let weights: [Double]

        public func apply(_ pixel: (Int) -> Float) -> Float {
            var sum = 0.0
            for (i, w) in weights.enumerated() {
                sum += w * Double(pixel(first + i))
            }
            return Float(sum)
        }
    }

    /// Pillow's coefficient rule (libImaging/Resample.c) for the box filter: output pixel o covers
    /// input centred at (o + 0.5) * scale; when shrinking, the filter widens by the scale so every
    /// input pixel contributes; when enlarging, each output pixel copies its nearest input pixel.
    public static func boxWeights(inputSize: Int, outputSize: Int) -> [Taps] {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 0.5 * filterScale
        return (0..<outputSize).map { o -> Taps in
            let centre = (Double(o) + 0.5) * scale
            // Int(_:) truncates toward zero, like the C cast Pillow uses.
            let first = max(Int(centre - support + 0.5), 0)
            let end = min(Int(centre + support + 0.5), inputSize)
            var weights = (first..<end).map { i -> Double in
                let t = (Double(i) - centre + 0.5) / filterScale
                return (t > -0.5 && t <= 0.5) ? 1 : 0
            }
            let total = weights.reduce(0, +)
            if total != 0 {
                weights = weights.map { $0 / total }
            }
            return Taps(first: first, weights: weights)
        }
    }

    // MARK: step 5

    /// The intensity-weighted centre (x, y) in pixel-index coordinates: sum(index * v) / sum(v).
    public static func centreOfMass(_ image: GrayImage) -> (x: Double, y: Double) {
        var mass = 0.0, sumX = 0.0, sumY = 0.0
        for y in 0..<image.height {
            for x in 0..<image.width {
                let v = Double(image[x, y])
                mass += v
                sumX += v * Double(x)
                sumY += v * Double(y)
            }
        }
        guard mass > 0 else { return (Double(image.width - 1) / 2, Double(image.height - 1) / 2) }
        return (sumX / mass, sumY / mass)
    }

    /// Paste `digit` into a black `side` x `side` canvas at the integer offset that puts its centre
    /// of mass nearest `massCentre`, clamped so no ink falls off the edge.
    public static func pastedCentredByMass(_ digit: GrayImage, side: Int) -> GrayImage {
        let centre = centreOfMass(digit)
        let left = min(max(roundHalfUp(massCentre - centre.x), 0), side - digit.width)
        let top = min(max(roundHalfUp(massCentre - centre.y), 0), side - digit.height)
        var canvas = GrayImage(width: side, height: side)
        for y in 0..<digit.height {
            for x in 0..<digit.width {
                canvas[left + x, top + y] = digit[x, y]
            }
        }
        return canvas
    }
}
