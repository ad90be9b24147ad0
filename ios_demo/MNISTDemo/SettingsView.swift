// SettingsView.swift — the server URL and how the on-device model is run.

import MNISTDemoCore
import SwiftUI

enum SettingsKey {
    static let serverURL = "serverURL"
    static let compareWithServer = "compareWithServer"
    static let onDeviceRoute = "onDeviceRoute"
}

struct SettingsView: View {
    @AppStorage(SettingsKey.serverURL) private var serverURL = ModelContract.Server.defaultURL
    @AppStorage(SettingsKey.onDeviceRoute) private var route = OnDeviceRoute.coreML
    @Environment(\.dismiss) private var dismiss

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    TextField(ModelContract.Server.defaultURL, text: $serverURL)
                        .keyboardType(.URL)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                } header: {
                    Text("Server URL")
                } footer: {
                    Text("Start the server with 'tfship serve --model runs/cnn'. The simulator reaches your Mac as localhost; a device needs your Mac's address on the local network.")
                }
                Section("Run the model on device with") {
                    Picker("Route", selection: $route) {
                        ForEach(OnDeviceRoute.allCases) { option in
                            Text(option.title).tag(option)
                        }
                    }
                    .pickerStyle(.segmented)
                }
            }
            .navigationTitle("Settings")
            .toolbar {
                ToolbarItem(placement: .confirmationAction) {
                    Button("Done") { dismiss() }
                }
            }
        }
    }
}
