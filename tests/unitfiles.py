"""Reading systemd unit files and asking systemd-analyze about them, for the unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest


def read_unit(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; keys may repeat."""
    entries = []
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return tool


def exposure(tool: str, unit: Path) -> float:
    result = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    if match is None:
        if "offline" in result.stderr:
            pytest.skip("this systemd-analyze has no --offline (systemd >= 250 needed)")
        pytest.fail(f"no exposure level in systemd-analyze output:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))
