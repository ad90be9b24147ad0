// GrayImage.swift — a grayscale bitmap the preprocessing works on, plus CoreGraphics conversions.

import CoreGraphics
import Foundation

/// A grayscale bitmap: row-major, one Float per pixel in 0...255 (0 = black).
/// Float, not UInt8, so every preprocessing step computes like the Python clients (NumPy float32)
/// and rounds to 8 bits only once, at the very end.
struct GrayImage: Equatable {
    let width: Int
    let height: Int
    var pixels: [Float]

    init(width: Int, height: Int, pixels: [Float]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height,
                     "GrayImage needs width * height pixels")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    init(width: Int, height: Int, fill: Float = 0) {
        self.init(width: width, height: height, pixels: Array(repeating: fill, count: width * height))
    }

    subscript(x: Int, y: Int) -> Float {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    var maximum: Float { pixels.max() ?? 0 }

    /// The pixels inside `box` (inclusive bounds) as a new image.
    func cropped(to box: PixelBox) -> GrayImage {
        var out = GrayImage(width: box.width, height: box.height)
        for y in 0..<box.height {
            for x in 0..<box.width {
                out[x, y] = self[box.minX + x, box.minY + y]
            }
        }
        return out
    }

    /// Every value rounded half-up and clamped to 0...255: what an 8-bit image can hold.
    func quantized() -> GrayImage {
        GrayImage(width: width, height: height,
                  pixels: pixels.map { min(max(($0 + 0.5).rounded(.down), 0), 255) })
    }
}

/// A rectangle of pixels with inclusive bounds.
struct PixelBox: Equatable {
    let minX: Int
    let minY: Int
    let maxX: Int
    let maxY: Int

    var width: Int { maxX - minX + 1 }
    var height: Int { maxY - minY + 1 }
}

enum GrayImageError: LocalizedError {
    case cannotCreateContext
    case cannotCreateImage
    case emptyCanvas

    var errorDescription: String? {
        switch self {
        case .cannotCreateContext: return "Could not create a grayscale bitmap."
        case .cannotCreateImage: return "Could not turn the 28x28 pixels into an image."
        case .emptyCanvas: return "The canvas has no size yet."
        }
    }
}

extension GrayImage {
    /// An 8-bit grayscale CGImage of the quantized pixels: the form CoreML's image input takes.
    func cgImage() throws -> CGImage {
        let bytes = quantized().pixels.map { UInt8($0) }
        guard let provider = CGDataProvider(data: Data(bytes) as CFData),
              let image = CGImage(width: width, height: height, bitsPerComponent: 8, bitsPerPixel: 8,
                                  bytesPerRow: width, space: CGColorSpaceCreateDeviceGray(),
                                  bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.none.rawValue),
                                  provider: provider, decode: nil, shouldInterpolate: false,
                                  intent: .defaultIntent) else {
            throw GrayImageError.cannotCreateImage
        }
        return image
    }
}
