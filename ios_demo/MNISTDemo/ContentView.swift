// ContentView.swift — draw, classify, compare with the server.

import MNISTDemoCore
import SwiftUI

@MainActor
struct ContentView: View {
    @StateObject private var session = ClassificationSession()
    @AppStorage(SettingsKey.serverURL) private var serverURL = ModelContract.Server.defaultURL
    @AppStorage(SettingsKey.compareWithServer) private var compareWithServer = false
    @AppStorage(SettingsKey.onDeviceRoute) private var route = OnDeviceRoute.coreML
    @State private var showsSettings = false

    var body: some View {
        NavigationStack {
            ScrollView {
                VStack(spacing: 16) {
                    DrawingCanvas(strokes: $session.strokes)
                    HStack {
                        Button("Clear", role: .destructive) { session.clear() }
                            .buttonStyle(.bordered)
                        Spacer()
                        if let input = session.modelInput {
                            ModelInputPreview(image: input)
                        }
                        Spacer()
                        Button("Classify") {
                            Task {
                                await session.classify(route: route, compareWithServer: compareWithServer,
                                                       serverURL: serverURL)
                            }
                        }
                        .buttonStyle(.borderedProminent)
                        .disabled(session.isClassifying)
                    }
                    Toggle("Compare with server", isOn: $compareWithServer)
                    if let hint = session.hint {
                        Text(hint).font(.callout).foregroundStyle(.secondary)
                    }
                    HStack(alignment: .top) {
                        ResultCard(title: "On device (\(route.title))", outcome: session.onDevice)
                        if compareWithServer {
                            ResultCard(title: "Server", outcome: session.server)
                        }
                    }
                }
                .padding()
            }
            .navigationTitle("MNIST Digits")
            .toolbar {
                ToolbarItem(placement: .primaryAction) {
                    Button {
                        showsSettings = true
                    } label: {
                        Label("Settings", systemImage: "gearshape")
                    }
                }
            }
            .sheet(isPresented: $showsSettings) {
                SettingsView()
            }
        }
    }
}
