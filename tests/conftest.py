"""What every test shares: where the checkout under test is.

tests/unit/ runs without root and makes no kernel object (``make test-unit``, seconds);
tests/e2e/ runs as root against the real kernel, systemd and Prometheus, each test checked for
what it leaves on the host (tests/e2e/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
