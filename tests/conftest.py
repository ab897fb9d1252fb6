"""What every test shares: where the checkout under test is.

tests/unit/ runs without root and makes no kernel object (``make test-unit``, seconds);
tests/e2e/ runs as root against the real kernel, systemd and Prometheus, each test checked for
what it leaves on the host (tests/e2e/conftest.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_static(sources: Path, out: Path) -> Path:
    """Every ``sources/*.c`` as a static program in ``out``: it runs inside any container's
    root, whatever libc the image has or lacks."""
    for source in sorted(sources.glob("*.c")):
        subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                        str(out / source.stem), str(source)], check=True, capture_output=True)
    return out
