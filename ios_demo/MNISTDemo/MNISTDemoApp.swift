// MNISTDemoApp.swift — the app's entry point.

import SwiftUI

@main
struct MNISTDemoApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
