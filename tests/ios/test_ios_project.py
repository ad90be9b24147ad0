"""The XcodeGen spec builds the app the README describes: iOS 16, the installed model compiled in,
the core package linked from its folder, no signing secrets, and the copied model kept out of git."""

from __future__ import annotations

import subprocess

import yaml

import ios_swift
from tfship.export.ios_install import APP_CONTRACT, APP_MODEL_DIR, APP_PROJECT_FILE

SPEC = yaml.safe_load((ios_swift.APP_DIR / APP_PROJECT_FILE).read_text(encoding="utf-8"))
APP_TARGET = SPEC["targets"]["MNISTDemo"]
INSTALLED_MODEL = APP_MODEL_DIR / f"{APP_CONTRACT.class_name}.mlmodel"


def _source_paths(target) -> list[str]:
    return [s if isinstance(s, str) else s["path"] for s in target["sources"]]


def test_ios_16_deployment_target():
    assert SPEC["options"]["deploymentTarget"]["iOS"] == "16.0"
    assert APP_TARGET["platform"] == "iOS" and APP_TARGET["type"] == "application"


def test_installed_model_is_an_app_source():
    """Only as a source is the .mlmodel compiled into the bundle and its class generated."""
    containing = [p for p in _source_paths(APP_TARGET) if INSTALLED_MODEL.is_relative_to(p)]
    assert containing, f"{INSTALLED_MODEL} is under none of the app's sources {_source_paths(APP_TARGET)}"
    excluded = [e for s in APP_TARGET["sources"] if isinstance(s, dict) for e in s.get("excludes", [])]
    assert not any(INSTALLED_MODEL.match(e) or "mlmodel" in e for e in excluded)
    assert (ios_swift.APP_DIR / APP_MODEL_DIR).is_dir()


def test_app_uses_the_core_package_locally():
    """The app links MNISTDemoCore from its folder: the code the Linux tests compile is the app's."""
    packages = SPEC["packages"]
    assert [d for d in APP_TARGET["dependencies"] if "package" in d] == [{"package": "MNISTDemoCore"}]
    assert (ios_swift.APP_DIR / packages["MNISTDemoCore"]["path"] / "Package.swift").is_file()
    assert "url" not in packages["MNISTDemoCore"]  # local, nothing to fetch
    # No app source is also compiled into the package (a type defined twice would not link).
    app_sources = {p.name for p in (ios_swift.APP_DIR / "MNISTDemo").rglob("*.swift")}
    core_sources = {p.name for p in (ios_swift.CORE_DIR / "Sources").rglob("*.swift")}
    assert app_sources.isdisjoint(core_sources)


def _all_settings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _all_settings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_settings(item)


def test_no_signing_secrets():
    settings = dict(_all_settings(SPEC))
    assert settings.get("DEVELOPMENT_TEAM", "") == ""
    assert not [k for k in settings if "PROVISIONING_PROFILE" in str(k) or k == "CODE_SIGN_IDENTITY"]
    assert APP_TARGET["settings"]["base"]["PRODUCT_BUNDLE_IDENTIFIER"].startswith("com.example.")


def test_local_http_server_is_allowed():
    ats = APP_TARGET["info"]["properties"]["NSAppTransportSecurity"]
    assert ats == {"NSAllowsLocalNetworking": True}


def test_copied_model_is_ignored_by_git():
    path = ios_swift.APP_DIR / INSTALLED_MODEL
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", str(path)], cwd=ios_swift.APP_DIR,
                          capture_output=True)
    assert done.returncode == 0, f"{path} is not git-ignored"
