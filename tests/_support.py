"""What every test folder needs to start a child Python on this checkout's traceduck."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
PYTHON = sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports traceduck from this checkout, without
    the parent's traceduck, OpenTelemetry and git settings (so the child sees the defaults)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRACEDUCK_", "OTEL_", "GIT_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env
