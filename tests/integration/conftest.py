"""Shared fixtures for the integration tests: they run the real vessel binary."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def vessel_path():
    return os.environ.get("VESSEL", str(ROOT / "build" / "vessel"))


@pytest.fixture(scope="session")
def vessel():
    path = vessel_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"vessel binary not found at {path} (run make, or set VESSEL)")
    return path


def run(cmd, timeout=60, **kw):
    """Runs a command, never hangs the suite: a timeout fails the test."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
