"""A bundle under ctrd (``[container] bundle = DIR``: the bundle's container, ctrd's restart and
network) and under ``ctrctl run --bundle DIR`` (as ctr-runtime runs it)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Daemon, Env
from tests.oci_fixtures import config, eventually, make_bundle


def test_a_definition_takes_its_container_from_a_bundle(ctrd: Daemon, tmp_path: Path,
                                                       busybox_image: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    document = config(["/bin/sh", "-c", "echo $((${RUNS:-0} + 1)) >> /out/runs; "
                       "hostname > /out/hostname; ip -o -4 addr show eth0 > /out/address; "
                       "exit 1"])
    document["hostname"] = "oci-box"
    document["process"]["env"] = ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]
    document["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                               "options": ["rbind"]})
    bundle = make_bundle(tmp_path / "bundle", busybox_image, document)
    ctrd.define("oci-bundled", f"""
[container]
bundle = "{bundle}"
[restart]
policy = "on-failure"
delay = "100ms"
burst = 2
[network]
mode = "veth"
""")
    ctrd.start()
    ctrd.ctl("start", "oci-bundled")
    eventually(lambda: len((out / "runs").read_text().split()) >= 2
               if (out / "runs").exists() else False, "ctrd restarted the bundle's container")
    # the files are read once no run is left to rewrite them (a read meanwhile saw one empty)
    status = ctrd.wait_for("oci-bundled", lambda s: s["state"] == "failed")
    assert status["restarts"] >= 2
    assert (out / "hostname").read_text() == "oci-box\n"  # the bundle's
    assert "inet 10.214." in (out / "address").read_text()  # ctrd's veth, on its pool


def test_ctrctl_runs_a_bundle(env: Env, tmp_path: Path, busybox_image: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", busybox_image,
                         config(["/bin/sh", "-c", "cat /etc/hostname 2>/dev/null; echo ran; "
                                 "exit 3"]))
    done = env.ctrctl("run", "--bundle", str(bundle), "--name", "oci-ctl-run")
    assert (done.returncode, done.stdout) == (3, "ran\n")
    assert not (env.state / "bundles" / "oci-ctl-run").exists()  # deleted after, as runc run
    refused = env.ctrctl("run", "--bundle", str(bundle), "--memory-max", "64M")
    assert refused.returncode == 2
    assert "not with --bundle: the bundle's config.json says it" in refused.stderr
    assert json.loads((bundle / "config.json").read_text())["process"]["args"][0] == "/bin/sh"
