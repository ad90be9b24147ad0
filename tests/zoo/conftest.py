"""The zoo tests import their model builders from this folder (zoo_models.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
