"""What every unit test shares: no unit test reads the host's registries.conf (a short image
name resolves only through the test's own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def no_host_registries_conf(tmp_path_factory: pytest.TempPathFactory,
                            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    conf = tmp_path_factory.mktemp("containers") / "registries.conf"
    conf.write_text("")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    yield conf
