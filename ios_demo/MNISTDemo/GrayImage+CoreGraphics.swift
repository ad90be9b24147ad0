// GrayImage+CoreGraphics.swift — the package's GrayImage as the CGImage Core ML and SwiftUI take.

import CoreGraphics
import Foundation
import MNISTDemoCore

enum ImageConversionError: LocalizedError {
    case cannotCreateImage

    var errorDescription: String? {
        switch self {
        case .cannotCreateImage: return "Could not turn the 28x28 pixels into an image."
        }
    }
}

extension GrayImage {
    /// An 8-bit grayscale CGImage of the quantized pixels: the form CoreML's image input takes.
    func cgImage() throws -> CGImage {
        guard let provider = CGDataProvider(data: Data(bytes()) as CFData),
              let image = CGImage(width: width, height: height, bitsPerComponent: 8, bitsPerPixel: 8,
                                  bytesPerRow: width, space: CGColorSpaceCreateDeviceGray(),
                                  bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.none.rawValue),
                                  provider: provider, decode: nil, shouldInterpolate: false,
                                  intent: .defaultIntent) else {
            throw ImageConversionError.cannotCreateImage
        }
        return image
    }
}
