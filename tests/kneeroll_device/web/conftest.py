"""A log filled by a real demo run, shared by the site's tests."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="package")
def demo_log(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("weblog")
    done = subprocess.run([sys.executable, "-m", "kneeroll_device.cli", "demo", "--json", "--seed", "3",
                           "--speed", "50", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return data_dir
