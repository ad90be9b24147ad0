"""``import tfship.clients`` (and making clients) never loads TensorFlow, even where it is installed."""

from __future__ import annotations

import subprocess
import sys
import tempfile

PROBE = """
import sys
import tfship.clients as c
c.GrpcClient("127.0.0.1:9").close()
c.RestClient("http://127.0.0.1:9").close()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tensorflow_serving")
               or m.startswith(("tfship.export", "tfship.serve", "tfship.train")))
print(heavy)
"""


def test_clients_import_nothing_heavy():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                            cwd=tempfile.gettempdir(), check=True)
    assert result.stdout.strip() == "[]"


def test_client_cli_help_imports_nothing_heavy():
    probe = ("import sys, contextlib, io\nfrom tfship.clients import cli\nimport argparse\n"
             "p = argparse.ArgumentParser(); cli.configure(p, 'predict')\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'grpc', 'requests')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=tempfile.gettempdir(), check=True)
    assert result.stdout.strip() == "[]"
