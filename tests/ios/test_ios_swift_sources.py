"""Every Swift file parses, and only ModelContract.swift spells the model's and server's names."""

from __future__ import annotations

import re

import pytest

import ios_swift

SWIFT_FILES = ios_swift.swift_files()
OTHER_FILES = [f for f in SWIFT_FILES if f != ios_swift.CONTRACT_FILE]


def test_the_app_sources_are_there():
    names = {f.name for f in SWIFT_FILES}
    assert {"ModelContract.swift", "DigitPreprocessor.swift", "DigitClassifier.swift", "ServerClassifier.swift",
            "ContentView.swift", "MNISTDemoApp.swift"} <= names


@pytest.mark.parametrize("path", SWIFT_FILES, ids=lambda p: p.name)
def test_swift_file_parses(path):
    problems = ios_swift.syntax_problems(path.read_bytes())
    assert not problems, f"{path}: " + "; ".join(map(str, problems))


def _break_last_brace(source: bytes) -> bytes:
    i = source.rindex(b"}")
    return source[:i] + source[i + 1:]


# Ways a Swift file can be broken; the check must see each one.
BREAKAGES = {
    "unclosed brace": lambda s: _break_last_brace(s),
    "unclosed call": lambda s: s.replace(b"Button(\"Classify\")", b"Button(\"Classify\""),
    "stray operator": lambda s: s.replace(b"var body: some View {", b"var body: some View { ) +", 1),
    "half-written declaration": lambda s: s + b"\nstruct Broken: View { var body: some View { Text(\"x\") }\nfunc",
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_file_is_caught(breakage):
    source = (ios_swift.APP_DIR / "MNISTDemo" / "ContentView.swift").read_bytes()
    broken = BREAKAGES[breakage](source)
    assert broken != source
    assert ios_swift.syntax_problems(broken)


def contract_strings() -> dict[str, str]:
    """Every string value in ModelContract.swift (labels as labels[i])."""
    values = ios_swift.read_contract(ios_swift.CONTRACT_FILE.read_bytes())
    out = {}
    for name, value in values.items():
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, list):
            out.update({f"{name}[{i}]": v for i, v in enumerate(value) if isinstance(v, str)})
    # The path as it is sent, so a hand-written URL path is caught too.
    out["Server.predictPathFormat (formatted)"] = values["Server.predictPathFormat"].replace(
        "%@", values["Server.modelName"])
    return out


def _distinctive(value: str) -> bool:
    """Plain lower-case words ("image", "error") also occur in prose; names like classLabelProbs do not."""
    return len(value) > 1 and re.fullmatch(r"[a-z]+", value) is None


def contract_literal_uses(source: bytes) -> list[str]:
    """Where ``source`` spells a contract value itself instead of using ModelContract."""
    strings = contract_strings()
    found = []
    for line, text in ios_swift.string_literals(source):
        for name, value in strings.items():
            if text == value or (_distinctive(value) and value in text):
                found.append(f"line {line}: string {text!r} repeats ModelContract.{name}")
    class_name = strings["className"]
    for line, identifier in ios_swift.identifiers(source):
        if identifier == class_name:
            found.append(f"line {line}: uses the generated class {identifier} by name")
    return found


@pytest.mark.parametrize("path", OTHER_FILES, ids=lambda p: p.name)
def test_contract_names_only_in_model_contract(path):
    uses = contract_literal_uses(path.read_bytes())
    assert not uses, f"{path.name}: use ModelContract instead: " + "; ".join(uses)


@pytest.mark.parametrize("snippet", [
    b'let name = "classLabelProbs"',
    b'let url = Bundle.main.url(forResource: "MNISTClassifier", withExtension: "mlmodelc")',
    b'let model = try MNISTClassifier(configuration: MLModelConfiguration())',
    b'let body = ["signature_name": "predict_images"]',
    b'let input = ["image": value]',
    b'let digits = ["0", "1"]',
    b'let path = "/v1/models/mnist:predict"',
], ids=lambda s: s.decode()[:30])
def test_the_literal_check_catches_a_repeated_name(snippet):
    assert contract_literal_uses(snippet)


def test_prose_is_not_mistaken_for_a_name():
    assert contract_literal_uses(b'let hint = "Could not turn the pixels into an image."') == []


@pytest.mark.parametrize("name", sorted(ios_swift.read_contract(ios_swift.CONTRACT_FILE.read_bytes())))
def test_every_contract_value_is_used(name):
    """A constant nobody reads is a name the app silently stopped relying on."""
    reference = f"ModelContract.{name}"
    assert any(reference.encode() in f.read_bytes() for f in OTHER_FILES), f"{reference} is never used"
