// GrayImage.swift — a grayscale bitmap the rasterizer draws into and the preprocessing works on.
// Pure Swift; the app turns it into a CGImage for Core ML (MNISTDemo/GrayImage+CoreGraphics.swift).

/// A grayscale bitmap: row-major, one Float per pixel in 0...255 (0 = black).
/// Float, not UInt8, so every preprocessing step computes like the Python clients (NumPy float32)
/// and rounds to 8 bits only once, at the very end.
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height,
                     "GrayImage needs width * height pixels")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: Float = 0) {
        self.init(width: width, height: height, pixels: Array(repeating: fill, count: width * height))
    }

    public subscript(x: Int, y: Int) -> Float {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    public var maximum: Float { pixels.max() ?? 0 }

    /// The pixels inside `box` (inclusive bounds) as a new image.
    public func cropped(to box: PixelBox) -> GrayImage {
        var out = GrayImage(width: box.width, height: box.height)
        for y in 0..<box.height {
            for x in 0..<box.width {
                out[x, y] = self[box.minX + x, box.minY + y]
            }
        }
        return out
    }

    /// Every value rounded half-up and clamped to 0...255: what an 8-bit image can hold.
    public func quantized() -> GrayImage {
        GrayImage(width: width, height: height, pixels: pixels.map(Self.eightBit))
    }

    /// The quantized pixels as bytes, row-major: an 8-bit grayscale bitmap.
    public func bytes() -> [UInt8] {
        pixels.map { UInt8(Self.eightBit($0)) }
    }

    private static func eightBit(_ value: Float) -> Float {
        min(max((value + 0.5).rounded(.down), 0), 255)
    }
}

/// A rectangle of pixels with inclusive bounds.
public struct PixelBox: Equatable, Sendable {
    public let minX: Int
    public let minY: Int
    public let maxX: Int
    public let maxY: Int

    public init(minX: Int, minY: Int, maxX: Int, maxY: Int) {
        self.minX = minX
        self.minY = minY
        self.maxX = maxX
        self.maxY = maxY
    }

    public var width: Int { maxX - minX + 1 }
    public var height: Int { maxY - minY + 1 }
}
