"""config.json to the container model: every member of the runtime spec's Linux config mapped, and
every bad one refused with its member named, through the same parsers a definition uses."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import pytest

from supervisor.model import capabilities as caps
from supervisor.model.idmap import IdMap
from supervisor.model.rlimits import UNLIMITED
from supervisor.model.spec import (
    CapabilitySets,
    DeviceLimit,
    DeviceNode,
    DeviceRule,
    Hook,
    MountSpec,
    Rlimit,
    SystemdScope,
)
from supervisor.model.units import CpuSet
from supervisor.oci import config
from supervisor.oci.document import BundleError

BASE: dict[str, Any] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/sh", "-c", "echo hi"],
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/",
    },
    "root": {"path": "rootfs"},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
    "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                             {"type": "uts"}, {"type": "mount"}]},
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def parse(bundle: Path, document: dict[str, Any], systemd: bool = False) -> config.Bundle:
    return config.parse(document, bundle=bundle, name="oci-test", systemd_cgroup=systemd)


def with_(**members: Any) -> dict[str, Any]:
    """BASE with members set by dotted path (``process.user.uid``); None removes one."""
    document = copy.deepcopy(BASE)
    for dotted, value in members.items():
        *parents, last = dotted.split("__")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return document


def test_the_base_config_is_the_container_it_describes(bundle: Path) -> None:
    result = parse(bundle, BASE)
    spec = result.spec
    assert spec.image == str((bundle / "rootfs").resolve())
    assert spec.argv == ("/bin/sh", "-c", "echo hi")
    assert spec.environment == (("PATH", "/bin"), ("TERM", "xterm"))
    assert (spec.user, spec.working_dir, spec.read_only) == ("0:0", "/", False)
    assert spec.root.in_place and not spec.root.system_mounts
    assert spec.mounts == (MountSpec(target="/proc", source="proc", type="proc", recursive=False),)
    assert spec.network.mode == "none"  # a new network namespace: the engine's to set up
    assert spec.namespaces.host == ("cgroup",)  # not listed: the host's
    assert spec.hostname == socket.gethostname()  # a new UTS namespace keeps the host's name
    # No capabilities member: every capability, as runc runs it; no seccomp: unconfined.
    assert caps.container_set(spec.security.capabilities_add,
                              spec.security.capabilities_drop) == caps.EVERY
    assert spec.security.seccomp == "unconfined" and spec.security.seccomp_profile is None
    assert not spec.security.no_new_privileges
    assert result.oci_version == "1.0.2-dev" and result.warnings == ()


def test_ambient_capabilities_the_kernel_would_not_raise_are_left_out_with_a_warning(
        bundle: Path) -> None:
    """``runc spec`` writes its three capabilities into every set but the inheritable one, so
    none of the ambient ones can be raised: runc leaves them out, and so does ctr-runtime."""
    three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    read = parse(bundle, with_(process__capabilities={
        name: three for name in ("bounding", "effective", "permitted", "ambient")}))
    sets = read.spec.security.capability_sets
    assert sets is not None and sets.ambient == 0 and sets.effective == caps.mask(tuple(three))
    assert read.warnings == ("process.capabilities.ambient: CAP_KILL, CAP_NET_BIND_SERVICE, "
                             "CAP_AUDIT_WRITE outside the permitted and inheritable sets: the "
                             "kernel raises no such ambient capability, so the process does "
                             "not get it",)


def test_process_members(bundle: Path) -> None:
    spec = parse(bundle, with_(process={
        "terminal": True, "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 100, "umask": 0o027, "additionalGids": [5, 6]},
        "args": ["/app"], "env": ["A=1", "B=x=y"], "cwd": "/srv",
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": UNLIMITED}],
        "capabilities": {name: ["CAP_KILL", "CAP_CHOWN"]
                         for name in ("bounding", "effective", "permitted")},
        "noNewPrivileges": True, "oomScoreAdj": 500,
    })).spec
    assert spec.argv == ("/app",) and spec.working_dir == "/srv" and spec.user == "1000:100"
    assert spec.environment == (("A", "1"), ("B", "x=y"))
    settings = spec.process
    assert settings.terminal and settings.console_size == (24, 80)
    assert (settings.umask, settings.groups, settings.oom_score_adj) == (0o027, (5, 6), 500)
    assert settings.rlimits == (Rlimit("RLIMIT_NOFILE", 1024, 4096),
                                Rlimit("RLIMIT_CORE", 0, UNLIMITED))
    security = spec.security
    assert caps.container_set(security.capabilities_add, security.capabilities_drop) == \
        caps.mask(("CAP_KILL", "CAP_CHOWN"))
    assert security.no_new_privileges


def test_the_five_capability_sets_are_kept_as_given(bundle: Path) -> None:
    """What podman gives ``--user 1000 --cap-add NET_ADMIN``: the default bounding set, and
    NET_ADMIN in the other four, ambient so the user keeps it across the exec."""
    bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"]
    spec = parse(bundle, with_(process__user={"uid": 1000, "gid": 1000}, process__capabilities={
        "bounding": bounding, **{name: ["CAP_NET_ADMIN"] for name in
                                 ("effective", "inheritable", "permitted", "ambient")}})).spec
    sets = spec.security.capability_sets
    net_admin = caps.mask(("CAP_NET_ADMIN",))
    assert sets is not None and sets.bounding == caps.mask(tuple(bounding))
    assert (sets.effective, sets.permitted, sets.inheritable, sets.ambient) == (net_admin,) * 4
    only_bounding = parse(bundle, with_(process__capabilities={"bounding": bounding})).spec
    assert only_bounding.security.capability_sets == CapabilitySets(bounding=sets.bounding)


def test_mounts_with_their_options(bundle: Path) -> None:
    (bundle / "data").mkdir()
    spec = parse(bundle, with_(mounts=[
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "data", "type": "bind", "source": "data", "options": ["rbind", "ro",
                                                                              "rshared"]},
        {"destination": "/etc/hosts", "source": "/etc/hosts", "options": ["bind", "nosuid",
                                                                          "suid"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["relatime", "norelatime", "ro"]},
    ])).spec
    dev, sys, data, hosts, cgroup = spec.mounts
    assert (dev.type, dev.flags, dev.data) == ("tmpfs", ("nosuid", "strictatime"),
                                               ("mode=755", "size=65536k"))
    assert sys.read_only and sys.flags == ("nodev", "noexec", "nosuid")
    # A relative destination is taken from /, a relative source from the bundle.
    assert (data.target, data.source) == ("/data", str(bundle / "data"))
    assert data.recursive and data.read_only and data.propagation == "rshared"
    assert (hosts.type, hosts.recursive, hosts.flags) == ("bind", False, ())  # later wins
    assert cgroup.type == "cgroup" and cgroup.read_only and cgroup.flags == ()


def test_namespaces_new_joined_and_the_hosts(bundle: Path) -> None:
    spec = parse(bundle, with_(linux={"namespaces": [
        {"type": "mount"}, {"type": "network", "path": "/proc/42/ns/net"},
        {"type": "ipc", "path": "/run/ipc/b"}, {"type": "cgroup"}]}, hostname=None)).spec
    joins = spec.namespaces
    assert joins.paths == (("net", "/proc/42/ns/net"), ("ipc", "/run/ipc/b"))
    assert joins.host == ("pid", "uts")
    assert spec.network.mode == "none"
    no_network = parse(bundle, with_(linux={"namespaces": [{"type": "mount"}]})).spec
    assert no_network.network.mode == "host"


def test_a_user_namespace_takes_its_maps(bundle: Path) -> None:
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec = parse(bundle, with_(linux={
        "namespaces": [{"type": "mount"}, {"type": "user"}],
        "uidMappings": mapping, "gidMappings": mapping})).spec
    assert spec.namespaces.user and spec.namespaces.user_ids == IdMap.one_range(100000, 65536)


def test_a_user_namespace_takes_several_ranges_and_its_own_gid_map(bundle: Path) -> None:
    """podman's keep-id for the host's user 1000: that id is the same inside and out, the rest
    of the range around it; the gids one range."""
    uids = [{"containerID": 1001, "hostID": 101001, "size": 64535},
            {"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 1000, "hostID": 1000, "size": 1}]
    gids = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    ids = parse(bundle, with_(linux={
        "namespaces": [{"type": "mount"}, {"type": "user"}],
        "uidMappings": uids, "gidMappings": gids})).spec.namespaces.user_ids
    assert ids is not None
    assert ids.uids == ((0, 100000, 1000), (1000, 1000, 1), (1001, 101001, 64535))
    assert ids.text("uid") == "0 100000 1000\n1000 1000 1\n1001 101001 64535\n"
    assert ids.text("gid") == "0 300000 65536\n"
    assert (ids.host_uid(1000), ids.host_uid(1001), ids.host_uid(65536)) == (1000, 101001, None)
    assert ids.host_gid(1000) == 301000 and ids.root == (100000, 300000)


def test_a_user_namespace_joined_by_path_has_its_own_range_or_the_one_given(
        bundle: Path) -> None:
    namespaces = [{"type": "mount"}, {"type": "user", "path": "/proc/42/ns/user"}]
    joined = parse(bundle, with_(linux={"namespaces": namespaces})).spec.namespaces
    assert joined.user and joined.user_ids is None  # the runtime reads the namespace's
    assert ("user", "/proc/42/ns/user") in joined.paths
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    given = parse(bundle, with_(linux={"namespaces": namespaces, "uidMappings": mapping,
                                       "gidMappings": mapping})).spec.namespaces
    assert given.user_ids == IdMap.one_range(100000, 65536)  # checked against the namespace's


def test_linux_members(bundle: Path) -> None:
    spec = parse(bundle, with_(
        hostname="box", domainname="example.org",
        annotations={"org.example.a": "1"},
        linux__sysctl={"net.ipv4.ip_forward": "1", "kernel/msgmax": "8192"},
        linux__devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 0o600, "uid": 0, "gid": 0},
                        {"path": "/dev/pipe", "type": "p"}],
        linux__maskedPaths=["/proc/kcore"], linux__readonlyPaths=["/proc/sys"],
        linux__rootfsPropagation="rslave",
        linux__cgroupsPath="/machine/box",
        linux__seccomp={"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
    )).spec
    assert (spec.hostname, spec.domainname) == ("box", "example.org")
    assert spec.annotations == (("org.example.a", "1"),)
    assert spec.sysctl == (("net.ipv4.ip_forward", "1"), ("kernel.msgmax", "8192"))
    assert spec.device_nodes == (DeviceNode("/dev/fuse", "c", 10, 229, 0o600),
                                 DeviceNode("/dev/pipe", "p"))
    assert spec.security.masked_paths == ("/proc/kcore",)
    assert spec.security.read_only_paths == ("/proc/sys",)
    assert spec.root.propagation == "rslave"
    assert spec.cgroup.path == "/machine/box" and spec.cgroup.scope is None
    profile = spec.security.seccomp_profile
    assert profile is not None and profile.default_action.name == "SCMP_ACT_ERRNO"
    assert spec.security.seccomp == str(bundle / "config.json")


def test_a_systemd_cgroups_path(bundle: Path) -> None:
    spec = parse(bundle, with_(linux__cgroupsPath="machine.slice:libpod:abc"), systemd=True).spec
    assert spec.cgroup.scope == SystemdScope("machine.slice", "libpod-abc.scope")
    assert spec.cgroup.path is None


def test_resources_as_the_models_limits(bundle: Path) -> None:
    spec = parse(bundle, with_(linux__resources={
        "memory": {"limit": 67108864},
        "cpu": {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"},
        "pids": {"limit": 50},
        "unified": {"memory.high": "50M"},
    })).spec
    resources = spec.resources
    assert resources.memory_max == 64 << 20 and resources.cpu_quota == 0.5
    assert resources.cpu_weight == 50 and resources.cpuset_cpus == CpuSet.of("0")
    assert resources.pids_max == 50
    assert spec.cgroup.files == (("memory.high", "50M"),)
    unlimited = parse(bundle, with_(linux__resources={
        "memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}})).spec.resources
    assert (unlimited.memory_max, unlimited.cpu_quota, unlimited.pids_max) == (None, None, None)


def test_block_io_throttles_as_the_models_per_device_limits(bundle: Path) -> None:
    resources = parse(bundle, with_(linux__resources={"blockIO": {
        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 10 << 20},
                                  {"major": 7, "minor": 0, "rate": 0}],
        "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 300}]}})).spec.resources
    assert resources.io_read_bps == (DeviceLimit("254:0", 254, 0, 10 << 20),
                                     DeviceLimit("7:0", 7, 0, None))  # 0: the limit lifted
    assert resources.io_write_iops == (DeviceLimit("254:0", 254, 0, 300),)
    assert resources.io_write_bps is None and resources.io_read_iops is None


@pytest.mark.parametrize(("rules", "allowed"), [
    ([], None),
    ([{"allow": False, "access": "rwm"}], ()),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                          "access": "rw"}],
     (DeviceRule("c", 10, 229, "rw"),)),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3},
      {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}], ()),
    ([{"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"}], (DeviceRule("a"),)),
    ([{"allow": False}, {"allow": True, "type": "a"}], (DeviceRule("a"),)),
])
def test_device_rules_read_in_order(bundle: Path, rules: list[dict[str, Any]],
                                    allowed: tuple[DeviceRule, ...] | None) -> None:
    spec = parse(bundle, with_(linux__resources={"devices": rules})).spec
    assert spec.cgroup.device_rules == allowed


def test_hooks(bundle: Path) -> None:
    spec = parse(bundle, with_(hooks={
        "createRuntime": [{"path": "/usr/bin/netns-setup", "args": ["netns-setup", "-v"],
                           "env": ["A=1"], "timeout": 5}],
        "poststop": [{"path": "/bin/cleanup"}]})).spec
    assert spec.hooks.create_runtime == (Hook("/usr/bin/netns-setup", ("netns-setup", "-v"),
                                              (("A", "1"),), 5),)
    assert spec.hooks.poststop == (Hook("/bin/cleanup"),)
    assert spec.hooks.prestart == ()


def test_members_the_spec_does_not_define_are_ignored_with_a_warning(bundle: Path) -> None:
    result = parse(bundle, with_(linux__futureThing=1, process__user__extra="x"))
    assert result.warnings == (
        "linux.futureThing: not a member of the runtime spec (known here: "
        f"{', '.join(config._LINUX)}); ignored as the spec says",
        "process.user.extra: not a member of the runtime spec (known here: uid, gid, umask, "
        "additionalGids, username); ignored as the spec says",
    )


MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]
BAD: list[tuple[dict[str, Any], str]] = [
    ({"ociVersion": None}, "ociVersion: missing"),
    ({"ociVersion": "one"}, "ociVersion: not a version: 'one'"),
    ({"ociVersion": "2.0.0"}, "ociVersion: 2.0.0: ctr-runtime implements the runtime spec 1.0 to"),
    ({"ociVersion": "1.3.0"}, "ociVersion: 1.3.0: ctr-runtime implements"),
    ({"root": None}, "root: missing"),
    ({"root": {"path": "nothere"}}, "root.path: "),
    ({"root": {"path": "rootfs", "readonly": "yes"}}, "root.readonly: expected true or false"),
    ({"windows": {"layerFolders": []}}, "windows: a config for windows is not supported"),
    ({"process": None}, "process: missing"),
    ({"process__args": None}, "process.args: missing"),
    ({"process__args": []}, "process.args: expected a non-empty array"),
    ({"process__args": ["/bin/sh", 3]}, "process.args[1]: expected a string, got integer 3"),
    ({"process__env": ["PATH"]}, "process.env[0]: not NAME=VALUE: 'PATH'"),
    ({"process__cwd": "srv"}, "process.cwd: must be an absolute path"),
    ({"process__cwd": None}, "process.cwd: missing"),
    ({"process__user": None}, "process.user: missing"),
    ({"process__user": {"uid": -1, "gid": 0}}, "process.user.uid: must be between 0 and"),
    ({"process__user": {"uid": 0, "gid": 0, "umask": 0o1777}}, "process.user.umask: must be"),
    ({"process__user": {"uid": 0, "gid": 0, "additionalGids": ["a"]}},
     "process.user.additionalGids[0]: expected an integer"),
    ({"process__user": {"uid": 0, "gid": 0, "username": "Admin"}},
     "process.user.username: a Windows user name is not supported"),
    ({"process__terminal": 1}, "process.terminal: expected true or false"),
    ({"process__consoleSize": {"height": 24}}, "process.consoleSize.width: missing"),
    ({"process__rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]},
     "process.rlimits[0].type: not a resource limit: 'RLIMIT_FOO'"),
    ({"process__rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1}]},
     "process.rlimits[0].soft: the soft limit 10 is above the hard limit 1"),
    ({"process__rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2},
     "process.rlimits: a limit is given twice"),
    ({"process__capabilities": {"bounding": ["CAP_NOPE"]}},
     "process.capabilities.bounding[0]: not a capability: 'CAP_NOPE'"),
    ({"process__capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}},
     "process.capabilities.effective: must lie in the permitted set (not: CAP_KILL)"),
    ({"process__capabilities": {"bounding": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"]}},
     "process.capabilities.inheritable: must lie in the bounding set (not: CAP_CHOWN)"),
    ({"process__noNewPrivileges": "true"}, "process.noNewPrivileges: expected true or false"),
    ({"process__oomScoreAdj": 1001}, "process.oomScoreAdj: must be between -1000 and 1000"),
    ({"process__apparmorProfile": "docker-default"},
     "process.apparmorProfile: AppArmor is not supported by ctr-runtime"),
    ({"process__selinuxLabel": "system_u:system_r:container_t:s0"},
     "process.selinuxLabel: an SELinux label is not supported"),
    ({"process__ioPriority": {"class": "IOPRIO_CLASS_IDLE"}},
     "process.ioPriority: an I/O priority is not supported"),
    ({"hostname": "not a name"}, "hostname: not a valid host name"),
    ({"linux": {"namespaces": [{"type": "mount"}]}, "hostname": "box"},
     "hostname: cannot be set: the container shares the host's UTS namespace"),
    ({"domainname": "-x"}, "domainname: not a valid host name"),
    ({"mounts": [{"type": "proc"}]}, "mounts[0].destination: missing"),
    ({"mounts": [{"destination": "/", "type": "tmpfs"}]}, "mounts[0].destination: must not be /"),
    ({"mounts": [{"destination": "/x", "type": "nfs"}]},
     "mounts[0].type: nfs: ctr-runtime mounts bind, tmpfs, proc"),
    ({"mounts": [{"destination": "/x"}]}, "mounts[0].type: missing: ctr-runtime mounts"),
    ({"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["nosiud"]}]},
     "mounts[0].options[0]: unknown mount option 'nosiud'"),
    ({"mounts": [{"destination": "/x", "type": "bind", "source": "/", "options": ["mode=1"]}]},
     "mounts[0].options[0]: unknown mount option 'mode=1' (a bind mount takes:"),
    ({"mounts": [{"destination": "/x", "type": "bind"}]}, "mounts[0].source: missing"),
    ({"mounts": [{"destination": "/x", "type": "bind", "source": "/",
                  "uidMappings": MAPPING, "gidMappings": MAPPING}]},
     "mounts[0].uidMappings: an idmapped mount needs the container's user namespace"),
    ({"mounts": [{"destination": "/x", "type": "bind", "source": "/", "options": ["ridmap"]}]},
     "mounts[0].options: an idmapped mount needs the container's user namespace"),
    ({"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}]},
     "mounts[0].options[0]: unknown mount option 'idmap'"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "uidMappings": MAPPING,
                "gidMappings": MAPPING},
      "mounts": [{"destination": "/x", "type": "bind", "source": "/", "uidMappings": MAPPING}]},
     "mounts[0].gidMappings: no range given: at least one is needed"),
    ({"mounts": {"destination": "/x"}}, "mounts: expected an array, got a table"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "bogus"}]}},
     "linux.namespaces[1].type: must be one of"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "mount"}]}},
     "linux.namespaces[1].type: the mount namespace is listed twice"),
    ({"linux": {"namespaces": [{"type": "pid"}]}},
     "linux.namespaces: a mount namespace is required"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "ns/net"}]}},
     "linux.namespaces[1].path: must be an absolute path"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "time"}]}},
     "linux.namespaces[1].type: a time namespace is not supported"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user", "path": "/proc/1/ns/user"}],
                "uidMappings": MAPPING}},
     "linux.gidMappings: no range given: at least one is needed"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "uidMappings": MAPPING}},
     "linux.gidMappings: no range given: at least one is needed"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "gidMappings": MAPPING,
                "uidMappings": [{"containerID": 1, "hostID": 1, "size": 1}]}},
     "linux.uidMappings: container id 0 is not mapped: ctr sets the container up as its root"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "uidMappings": MAPPING,
                "gidMappings": [*MAPPING, {"containerID": 65536, "hostID": 100005, "size": 1}]}},
     "linux.gidMappings[1]: its host ids overlap those of range 0 (0:100000:65536)"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "gidMappings": MAPPING,
                "uidMappings": [*MAPPING, {"containerID": 5, "hostID": 1, "size": 1}]}},
     "linux.uidMappings[1]: its container ids overlap those of range 0 (0:100000:65536)"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "gidMappings": MAPPING,
                "uidMappings": [{"containerID": 0, "hostID": 4294967000, "size": 1000}]}},
     "linux.uidMappings[0]: the range 0:4294967000:1000 ends beyond the last id (4294967294)"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "gidMappings": MAPPING,
                "uidMappings": [{"containerID": 2 * n, "hostID": 100000 + 2 * n, "size": 1}
                                for n in range(341)]}},
     "linux.uidMappings: 341 ranges: the kernel takes at most 340"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], "gidMappings": MAPPING,
                "uidMappings": [{"containerID": 2 * n, "hostID": 4000000000 + 2 * n, "size": 1}
                                for n in range(300)]}},
     "linux.uidMappings: the map is 5045 bytes written out: the kernel takes less than 4096"),
    ({"linux__uidMappings": MAPPING}, "linux.uidMappings: given without a user namespace"),
    ({"linux__devices": [{"path": "/dev/x", "type": "q"}]}, "linux.devices[0].type: must be one"),
    ({"linux__devices": [{"path": "/dev/x", "type": "c", "major": 1}]},
     "linux.devices[0].minor: missing"),
    ({"linux__devices": [{"path": "/tmp/x", "type": "p"}]},
     "linux.devices[0].path: a device's path inside must be under /dev/"),
    ({"linux__sysctl": {"kernel.panic": "1"}},
     "linux.sysctl.kernel.panic: sysctl 'kernel.panic' is not in a namespace of the container"),
    ({"linux__sysctl": {"net.core.somaxconn": 5}}, "linux.sysctl.net.core.somaxconn: expected a"),
    ({"linux": {"namespaces": [{"type": "mount"}], "sysctl": {"net.ipv4.ip_forward": "1"}}},
     "linux.sysctl: net.ipv4.ip_forward: the container shares the host's net namespace"),
    ({"linux__resources": {"memory": {"limit": "lots"}}},
     "linux.resources.memory.limit: expected an integer"),
    ({"linux__resources": {"memory": {"limit": 1 << 63}}},
     "linux.resources.memory.limit: must be between -1 and"),
    ({"linux__resources": {"memory": {"swappiness": 10}}},
     "linux.resources.memory.swappiness: a swappiness is not supported"),
    ({"linux__resources": {"cpu": {"quota": 10, "period": 100000}}},
     "linux.resources.cpu.quota: 10 of every 100000 µs: CPU quota 0.0001 is out of range"),
    ({"linux__resources": {"cpu": {"cpus": "0-99999"}}}, "linux.resources.cpu.cpus: "),
    ({"linux__resources": {"cpu": {"mems": "0"}}},
     "linux.resources.cpu.mems: memory nodes (mems) is not supported"),
    ({"linux__resources": {"pids": {"limit": "x"}}}, "linux.resources.pids.limit: expected an"),
    ({"linux__resources": {"blockIO": {"weight": 10}}},
     "linux.resources.blockIO.weight: an I/O weight is not supported"),
    ({"linux__resources": {"blockIO": {"throttleReadIOPSDevice": [
        {"major": 7, "minor": 0, "rate": 1 << 40}]}}},
     "linux.resources.blockIO.throttleReadIOPSDevice[0].rate: must be between 1 and 4294967295"),
    ({"linux__resources": {"blockIO": {"throttleWriteBpsDevice": [
        {"major": 7, "minor": 0, "rate": 1}, {"major": 7, "minor": 0, "rate": 2}]}}},
     "linux.resources.blockIO.throttleWriteBpsDevice[1].minor: device 7:0 is given twice"),
    ({"linux__resources": {"unified": {"cgroup.procs": "1"}}},
     "linux.resources.unified.cgroup.procs: cgroup.procs is the runtime's to write"),
    ({"linux__resources": {"unified": {"memory/high": "1"}}},
     "linux.resources.unified.memory/high: not a cgroup file"),
    ({"linux__resources": {"devices": [{"type": "c"}]}},
     "linux.resources.devices[0].allow: missing"),
    ({"linux__resources": {"devices": [{"allow": True, "type": "c", "access": "rx"}]}},
     "linux.resources.devices[0].access: not device permissions: 'rx'"),
    ({"linux__resources": {"devices": [{"allow": False, "type": "c", "major": 1}]}},
     "linux.resources.devices: [0] denies one device after every device was allowed"),
    ({"linux__cgroupsPath": "/a/../b"}, "linux.cgroupsPath: not a cgroup path: '/a/../b'"),
    ({"linux__maskedPaths": ["proc/kcore"]}, "linux.maskedPaths[0]: must be an absolute path"),
    ({"linux__rootfsPropagation": "sideways"}, "linux.rootfsPropagation: not a propagation"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_NOPE"}},
     "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_NOPE'"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent"}},
     "linux.seccomp.listenerPath: not supported"),
    ({"linux__mountLabel": "system_u:object_r:container_file_t:s0"},
     "linux.mountLabel: an SELinux mount label is not supported"),
    ({"linux__intelRdt": {"closID": "x"}}, "linux.intelRdt: Intel RDT is not supported"),
    ({"linux__personality": {"domain": "LINUX32"}}, "linux.personality: an execution domain"),
    ({"hooks": {"prestart": [{"path": "hook"}]}}, "hooks.prestart[0].path: must be an absolute"),
    ({"hooks": {"poststart": [{"path": "/h", "timeout": 0}]}},
     "hooks.poststart[0].timeout: must be at least 1"),
    ({"hooks": {"poststop": [{"path": "/h", "env": ["X"]}]}},
     "hooks.poststop[0].env[0]: not NAME=VALUE"),
    ({"annotations": {"a": 1}}, "annotations.a: expected a string, got integer 1"),
]


@pytest.mark.parametrize(("members", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_member_is_named(bundle: Path, members: dict[str, Any], message: str) -> None:
    with pytest.raises(BundleError) as caught:
        parse(bundle, with_(**members))
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_bad_systemd_cgroups_path_is_named(bundle: Path) -> None:
    with pytest.raises(BundleError, match=r"^linux.cgroupsPath: not a systemd cgroup path: "
                       r"'/machine/box' \(use slice:prefix:name"):
        parse(bundle, with_(linux__cgroupsPath="/machine/box"), systemd=True)


def test_load_names_the_file(bundle: Path) -> None:
    with pytest.raises(BundleError, match=r"config.json: No such file or directory"):
        config.load(bundle, name="oci-test")
    (bundle / "config.json").write_text("{nope")
    with pytest.raises(BundleError, match=r"config.json: not JSON"):
        config.load(bundle, name="oci-test")


def test_mounts_are_refused_with_a_joined_mount_namespace(bundle: Path) -> None:
    document = with_(linux={"namespaces": [{"type": "mount", "path": "/proc/42/ns/mnt"}]})
    with pytest.raises(BundleError, match=r"^mounts: cannot be made with the mount namespace "):
        parse(bundle, document)
    joined = parse(bundle, with_(mounts=[], linux={"namespaces": [
        {"type": "mount", "path": "/proc/42/ns/mnt"}]}, hostname=None)).spec
    assert joined.namespaces.paths == (("mnt", "/proc/42/ns/mnt"),)
