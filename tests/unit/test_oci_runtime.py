"""ctr-runtime's pieces that need no container: its state records and the statuses read from
them, its logs in runc's two formats, the command found before parsing, features and spec, the
cgroup files of a bundle's ``unified`` on a fake tree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.cli.ctr_runtime import main
from supervisor.cli.ctr_runtime.info import template
from supervisor.cli.ctr_runtime.log import Log
from supervisor.model.spec import Resources
from supervisor.oci import config
from supervisor.oci.features import features
from supervisor.oci.state import FIFO, Record, StateError, container_id, ids, start_time
from supervisor.runtime.cgroups import CgroupUnavailableError, files, open_driver
from tests.fake_cgroupfs import FakeCgroupFs, make_v1_root, make_v2_root


def record(root: Path, cid: str, pid: int = 0) -> Record:
    (root / cid).mkdir(parents=True, exist_ok=True)
    found = Record(cid, "/b", "1.2.0", "/b/rootfs", "2026-01-01T00:00:00Z", pid=pid,
                   pid_start=start_time(pid) if pid else None, annotations={"a": "1"})
    found.save(root)
    return found


def test_a_record_round_trips_and_its_status_follows_the_process(tmp_path: Path) -> None:
    record(tmp_path, "oci-unit-new")
    assert Record.load(tmp_path, "oci-unit-new").status(tmp_path) == "creating"
    alive = record(tmp_path, "oci-unit-live", pid=os.getpid())
    (tmp_path / "oci-unit-live" / FIFO).touch()
    assert alive.status(tmp_path) == "created"  # its process waits on the FIFO
    (tmp_path / "oci-unit-live" / FIFO).unlink()
    assert alive.status(tmp_path) == "running"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    ended = record(tmp_path, "oci-unit-gone", pid=gone.pid)
    gone.wait()
    assert ended.status(tmp_path) == "stopped"
    assert ended.oci_state(tmp_path) == {
        "ociVersion": "1.2.0", "id": "oci-unit-gone", "pid": 0, "status": "stopped",
        "bundle": "/b", "rootfs": "/b/rootfs", "created": "2026-01-01T00:00:00Z",
        "owner": "root", "annotations": {"a": "1"}}
    reused = Record.load(tmp_path, "oci-unit-live")
    reused.pid_start = (reused.pid_start or 0) + 1  # another process with the same pid
    assert reused.status(tmp_path) == "stopped"
    assert ids(tmp_path) == ["oci-unit-gone", "oci-unit-live", "oci-unit-new"]
    assert not list(tmp_path.glob("*/.state.json.*")), "written by rename, nothing left over"


def test_ids_and_missing_containers_in_runcs_words(tmp_path: Path) -> None:
    with pytest.raises(StateError, match='container "nope" does not exist'):
        Record.load(tmp_path, "nope")
    for bad in ("", "../x", "-x", "a/b", "a b"):
        with pytest.raises(StateError, match="invalid container id"):
            container_id(bad)
    assert container_id("libpod-" + "a" * 64) == "libpod-" + "a" * 64


def test_logs_in_runcs_text_and_json(tmp_path: Path) -> None:
    log = tmp_path / "log"
    Log(str(log), "json").warning("careful")
    Log(str(log), "text").write("info", 'said "this"')
    Log(str(log), "json").debug("not without --debug")
    first, second = log.read_text().splitlines()
    entry = json.loads(first)
    assert (entry["level"], entry["msg"]) == ("warning", "careful")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", entry["time"]), entry
    assert second.endswith(' level=info msg="said \\"this\\""')


def test_only_the_commands_parser_is_built() -> None:
    assert main.verb(["--root", "/r", "--log", "state", "state", "x"]) == "state"
    assert main.verb(["--debug", "kill", "x", "KILL"]) == "kill"
    assert main.verb(["--help"]) is None
    assert main.verb(["bogus"]) is None
    args = main.parser("kill").parse_args(["--root", "/r", "kill", "--all", "x", "9"])
    assert (args.root, args.all, args.id, args.signal) == ("/r", True, "x", "9")


def test_state_imports_no_more_than_it_needs(tmp_path: Path) -> None:
    """An engine calls ``state`` often and waits for it: no runtime core, model, typing, datetime
    or shutil (argparse's formatter would import it to ask the terminal's width)."""
    record(tmp_path, "oci-unit-lean")
    script = ("import sys; from supervisor.cli.ctr_runtime.main import main; main(sys.argv[1:]); "
              "print(sorted(m for m in sys.modules if m in ('typing', 'datetime', 'shutil') or "
              "m.startswith(('supervisor.runtime', 'supervisor.model', 'supervisor.images'))))")
    result = subprocess.run([sys.executable, "-c", script, "--root", str(tmp_path), "state",
                             "oci-unit-lean"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.rpartition("}")[0] + "}")["status"] == "creating"
    assert result.stdout.splitlines()[-1] == "[]"


def test_create_of_a_bundle_imports_no_image_modules() -> None:
    """The image store, OCI image configs, image references, tarballs and the pre-flight checks
    are a definition's; a bundle's create never needs them, nor subprocess without hooks."""
    unused = ("supervisor.images.store", "supervisor.images.registries",
              "supervisor.images.layers", "supervisor.images.effective",
              "supervisor.images.imageconfig", "supervisor.images.reference",
              "supervisor.runtime.preflight", "supervisor.runtime.tarball", "tomllib", "tarfile",
              "subprocess")
    script = ("import sys, supervisor.cli.ctr_runtime.create; "
              f"print(sorted(m for m in sys.modules if m.startswith({unused!r})))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_features_and_the_spec_template(tmp_path: Path) -> None:
    implemented = features("0")
    assert implemented["linux"]["namespaces"] == ["cgroup", "ipc", "mount", "network", "pid",
                                                  "user", "uts"]
    assert "SCMP_ACT_NOTIFY" not in implemented["linux"]["seccomp"]["actions"]
    assert {"rbind", "rprivate", "nosuid", "ro"} <= set(implemented["mountOptions"])
    (tmp_path / "rootfs").mkdir()
    for rootless in (False, True):
        document = template(rootless)
        if rootless:  # ctr-runtime reads the rootless one; it refuses user namespaces at create
            assert document["linux"]["uidMappings"][0]["hostID"] == os.getuid()
        spec = config.parse(document, bundle=tmp_path, name="oci-unit").spec
        assert spec.argv == ("sh",) and spec.read_only and spec.process.terminal


def test_unified_files_only_on_cgroup_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v2_root = make_v2_root(tmp_path / "v2")
    monkeypatch.setattr(files, "make_dir", FakeCgroupFs(v2_root).make_dir)
    v2 = open_driver("cgroupfs-v2", root=v2_root).create("oci-unit", Resources())
    v2.write_files((("memory.high", "50M"),))
    assert (v2_root / "ctr" / "oci-unit" / "memory.high").read_text().strip() == "50M"
    v1_root = make_v1_root(tmp_path / "v1")
    monkeypatch.setattr(files, "make_dir", FakeCgroupFs(v1_root).make_dir)
    v1 = open_driver("cgroupfs-v1", root=v1_root).create("oci-unit", Resources())
    v1.write_files(())
    with pytest.raises(CgroupUnavailableError, match=r"cgroup v2 files \(memory.high\) need"):
        v1.write_files((("memory.high", "50M"),))
