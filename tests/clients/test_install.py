"""``pip install 'tfship[client]'`` in a fresh venv: no TensorFlow, and the CLI works from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _sources() -> tuple[str, ...]:
    """What setuptools needs to build the wheel: pyproject.toml, the readme and every package-dir
    folder (read from pyproject, so a new sub-package such as playground/ comes along)."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = {Path(d).parts[0] for d in config["tool"]["setuptools"]["package-dir"].values()}
    return ("pyproject.toml", "README.md", *sorted(folders))


SOURCES = _sources()
HEAVY = ("tensorflow", "tensorflow-serving-api", "keras", "tf2onnx", "onnxruntime", "coremltools")


def _run(*command, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    # Run outside the repo: from its root, `import tfship` would find the source folder instead.
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout,
                            cwd=Path(command[0]).parent)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} failed ({result.returncode}):\n{result.stdout[-3000:]}"
                    f"\n{result.stderr[-3000:]}")
    return result


def build_wheel(out: Path) -> Path:
    """The tfship wheel, built from a copy of the sources so no build/ or egg-info lands in the repo."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out / "dist", src)
    return next((out / "dist").glob("tfship-*.whl"))


def client_venv(root: Path) -> Path:
    """A fresh venv with ``tfship[client]`` installed from the wheel; returns its bin folder."""
    wheel = build_wheel(root)
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", f"{wheel}[client]")
    return bin_dir


@pytest.fixture(scope="module")
def client_bin(tmp_path_factory) -> Path:
    return client_venv(tmp_path_factory.mktemp("client_install"))


@pytest.mark.slow
def test_client_extra_installs_no_tensorflow(client_bin):
    installed = _run(client_bin / "python", "-m", "pip", "list", "--format=freeze").stdout.lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    assert not names & set(HEAVY), f"the client extra pulled in {sorted(names & set(HEAVY))}"
    assert {"grpcio", "protobuf", "requests", "pillow", "numpy", "tfship"} <= names


@pytest.mark.slow
def test_importing_the_clients_imports_no_tensorflow(client_bin):
    probe = ("import sys, tfship.clients; c = tfship.clients.GrpcClient('127.0.0.1:9'); "
             "r = tfship.clients.RestClient('http://127.0.0.1:9'); "
             "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
             "or m.startswith(('tfship.export', 'tfship.serve', 'tensorflow_serving'))]; print(bad)")
    assert _run(client_bin / "python", "-c", probe).stdout.strip() == "[]"


@pytest.mark.slow
def test_cli_works_from_the_client_venv(client_bin, server, tmp_path, mnist):
    from PIL import Image

    image = tmp_path / "seven.png"
    Image.fromarray(255 - mnist.test.images[0].reshape(28, 28)).resize((56, 56)).save(image)
    for address in (server.grpc, server.rest):
        result = _run(client_bin / "tfship", "predict", "--server", address, "--model", "mnist", image, timeout=60)
        assert "top 3:" in result.stdout and result.stdout.splitlines()[-1].split()[1] == str(int(mnist.test.labels[0]))
    status = _run(client_bin / "tfship", "status", "--server", server.grpc)
    assert "AVAILABLE" in status.stdout
    down = _run(client_bin / "tfship", "status", "--server", "grpc://127.0.0.1:9", "--attempts", "1", check=False)
    assert down.returncode != 0 and len(down.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_commands_of_missing_extras_name_the_extra(client_bin, tmp_path):
    train = _run(client_bin / "tfship", "train", "--out", tmp_path / "run", check=False)
    assert train.returncode == 1
    assert train.stderr.strip().splitlines() == [
        "train: error: 'tfship train' needs the Python package 'keras', which is not installed. "
        "Install it with: pip install 'tfship[train]'"]
    (tmp_path / "base" / "1").mkdir(parents=True)
    (tmp_path / "base" / "1" / "saved_model.pb").write_bytes(b"")  # passes the layout check, then needs TF
    serve = _run(client_bin / "tfship", "serve", "--model", tmp_path / "base", "--port", "0", "--rest_api_port", "0",
                 check=False)
    assert serve.returncode == 1 and "pip install 'tfship[serve]'" in serve.stderr
