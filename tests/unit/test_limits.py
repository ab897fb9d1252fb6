"""The limits issue 16 adds (IO per device, memory_high, memory_swap_max, the veth's rates) and
[metrics], every way in: the model's parsers, a definition's [resources] and [network], the
API's PATCH, ``ctrctl update`` (and ``run``'s flags, the same), the drop-in ``--persist``
writes, and how ``ctrctl status`` shows them. The same value gives the same words whichever way
it came."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.cli import show
from supervisor.config import dropins, loader
from supervisor.config.errors import DefinitionError
from supervisor.model import iolimits
from supervisor.model import resources as limits
from supervisor.model.errors import Invalid
from supervisor.model.spec import DeviceLimit, MetricsSpec, Resources
from supervisor.model.units import rate, rate_text
from tests.unit.test_api import Api, FakeBackend, served
from tests.unit.test_cli import Ctl

MIB = 1 << 20


def test_the_table_of_limits_names_every_field_of_resources_in_order() -> None:
    assert list(limits.BY_NAME) == [field.name for field in dataclasses.fields(Resources)]


def test_the_limit_flags_load_no_spec() -> None:
    """``ctrctl run`` declares a flag per limit; the spec's dataclasses cost it ~50 ms."""
    code = ("import sys; import supervisor.model.resources, supervisor.model.iolimits; "
            "print(sorted(m for m in sys.modules if m.startswith('supervisor.model.spec')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert loaded.strip() == "[]"


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A block device node the tests may name: the first whole disk of this machine, as
    /sys/dev/block says (a partition of it is what the refusal is tested with)."""
    for entry in sorted(Path("/sys/dev/block").iterdir()):
        node = Path("/dev") / entry.resolve().name
        if not (entry / "partition").exists() and node.exists():
            return str(node)
    pytest.skip("this machine has no block device node")


def numbers(node: str) -> tuple[int, int]:
    device = os.stat(node).st_rdev
    return os.major(device), os.minor(device)


# --- the model's parsers -----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "per_second"), [
    ("10mbit", 1_250_000), ("500kbit", 62_500), ("1gbit", 125_000_000), ("1.5mbit", 187_500),
    ("1mbps", 1_000_000), ("8bit", 1), ("1Mibit", 131_072), ("1M", MIB), ("512K", 512 << 10),
    (1000, 1000), ("34gbit", 4_250_000_000),
])
def test_rates_as_tc_writes_them_or_bytes_per_second(text: str | int, per_second: int) -> None:
    assert rate(text) == per_second
    assert rate(rate_text(per_second)) == per_second  # what the API and records write back


def test_rate_text_is_the_largest_exact_unit() -> None:
    assert [rate_text(v) for v in (1_250_000, MIB, 125_000_000, 3)] == [
        "10mbit", "1M", "1gbit", "24bit"]


@pytest.mark.parametrize(("text", "words"), [
    ("fast", "not a rate: 'fast' (use e.g. 10mbit"), ("0mbit", "more than 0"),
    ("35gbit", "beyond what tc's token bucket takes (at most 34gbit)"), (True, "not a rate"),
    ("-1mbit", "not a rate"), (1.5, "not a rate"),
])
def test_bad_rates(text: object, words: str) -> None:
    with pytest.raises(Invalid, match=words.replace("(", r"\(").replace(")", r"\)")):
        rate(text)


def test_device_limits_in_every_form(disk: str) -> None:
    major, minor = numbers(disk)
    parse = limits.BY_NAME["io_read_bps"].parse
    expected = (DeviceLimit(disk, major, minor, 10 * MIB),)
    assert parse({disk: "10M"}) == expected  # TOML's and JSON's table
    assert parse(f"{disk}:10M") == expected  # docker's --device-read-bps
    assert parse([f"{disk}:10M"]) == expected
    assert parse(f"{major}:{minor}:10M") == (DeviceLimit(f"{major}:{minor}", major, minor,
                                                          10 * MIB),)
    assert parse({disk: "max"}) == (DeviceLimit(disk, major, minor, None),)
    assert limits.BY_NAME["io_write_iops"].parse(f"{disk}:300") == (
        DeviceLimit(disk, major, minor, 300),)


@pytest.mark.parametrize(("key", "value", "words"), [
    ("io_read_bps", {"/dev/nonexistent-lim": "1M"}, "block device /dev/nonexistent-lim: No such "
     "file or directory"),
    ("io_read_bps", {"/dev/null": "1M"}, "/dev/null is not a block device"),
    ("io_read_bps", {"vda": "1M"}, "not a block device: 'vda' (use the path of its node"),
    ("io_read_bps", "/dev/vda", "not DEVICE:LIMIT: '/dev/vda'"),
    ("io_read_bps", 5, "expected a table of devices"),
    ("io_read_bps", {}, "no device given"),
    ("io_write_iops", "254:0:0", "254:0: must be between 1 and 4294967295, got 0"),
    ("io_write_bps", "254:0:0", "254:0: must be more than 0 bytes per second"),
    ("io_write_bps", "254:0:lots", "254:0: not a size: 'lots'"),
])
def test_bad_device_limits(key: str, value: object, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        limits.parse({key: value})
    assert words in str(caught.value)
    assert caught.value.at[0] == key


def test_a_device_given_twice(disk: str) -> None:
    major, minor = numbers(disk)
    with pytest.raises(Invalid, match=f"device {major}:{minor} is given twice"):
        limits.parse({"io_read_bps": f"{disk}:1M,{major}:{minor}:2M"})


def test_a_partition_is_refused_naming_its_disk(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    disk = tmp_path / "devices" / "vdz"
    (disk / "vdz1").mkdir(parents=True)
    (disk / "dev").write_text("250:0\n")
    (disk / "vdz1" / "partition").write_text("1\n")
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "250:1").symlink_to(disk / "vdz1")
    monkeypatch.setattr(iolimits, "SYS_BLOCK", tmp_path / "block")
    with pytest.raises(Invalid, match=r"250:1 is a partition: the kernel limits whole disks, "
                       r"limit /dev/vdz \(250:0\) instead"):
        iolimits.block_device("250:1")


def test_per_device_updates_merge_by_device() -> None:
    vda, vdb = DeviceLimit("/dev/vda", 254, 0, MIB), DeviceLimit("/dev/vdb", 254, 16, MIB)
    current = Resources(io_read_bps=(vda, vdb), memory_max=MIB)
    lifted = DeviceLimit("254:0", 254, 0, None)
    merged = current.merged(Resources(io_read_bps=(lifted,)))
    assert merged.io_read_bps == (lifted, vdb)  # vdb's limit stays, as it does in the kernel
    assert merged.memory_max == MIB


# --- a definition ------------------------------------------------------------------------------

@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images" / "busybox").mkdir(parents=True)
    return tmp_path / "data"


def definition(data: Path, text: str) -> loader.Definition:
    return loader.parse_text("lim-def", textwrap.dedent(text), source=data.parent / "lim.toml",
                             data_dir=data)


def problems(data: Path, text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        definition(data, text)
    return [str(problem) for problem in caught.value.problems]


def test_every_new_key_of_a_definition(data: Path, disk: str) -> None:
    major, minor = numbers(disk)
    spec = definition(data, f'''
        [container]
        image = "busybox"
        [resources]
        memory_max = "256M"
        memory_high = "200M"
        memory_swap_max = "1G"
        io_read_bps = {{ "{disk}" = "10M" }}
        io_write_bps = "{disk}:5M"
        io_read_iops = {{ "{major}:{minor}" = 1000 }}
        io_write_iops = {{ "{disk}" = "max" }}
        [network]
        egress_rate = "10mbit"
        ingress_rate = "1M"
        [metrics]
        port = 9100
        path = "/stats"
    ''').spec
    assert spec.resources == Resources(
        memory_max=256 * MIB, memory_high=200 * MIB, memory_swap_max=1 << 30,
        io_read_bps=(DeviceLimit(disk, major, minor, 10 * MIB),),
        io_write_bps=(DeviceLimit(disk, major, minor, 5 * MIB),),
        io_read_iops=(DeviceLimit(f"{major}:{minor}", major, minor, 1000),),
        io_write_iops=(DeviceLimit(disk, major, minor, None),),
        egress_rate=1_250_000, ingress_rate=MIB)
    assert spec.metrics == MetricsSpec(port=9100, path="/stats")


def test_bad_keys_name_file_key_and_reason(data: Path) -> None:
    source = data.parent / "lim.toml"
    assert problems(data, '''
        [container]
        image = "busybox"
        [resources]
        egress_rate = "10mbit"
        io_read_bps = { "/dev/nonexistent-lim" = "1M" }
        memory_high = 0
        [metrics]
        port = 0
        scheme = "https"
    ''') == [
        f"{source}: resources.egress_rate: unknown key (a rate of the veth: put it under "
        "[network])",
        f"{source}: resources.memory_high: must be more than 0 bytes, got 0",
        f'{source}: resources.io_read_bps."/dev/nonexistent-lim": block device '
        "/dev/nonexistent-lim: No such file or directory",
        f"{source}: metrics.scheme: unknown key (known keys: path, port)",
        f"{source}: metrics.port: must be between 1 and 65535, got 0",
    ]


def test_rates_and_an_exporter_need_a_network_of_the_containers_own(data: Path) -> None:
    source = data.parent / "lim.toml"
    assert problems(data, '''
        [container]
        image = "busybox"
        [network]
        mode = "none"
        ingress_rate = "1mbit"
        [metrics]
        port = 9100
    ''') == [
        f"{source}: network.ingress_rate: needs network.mode = \"veth\" (it is 'none')",
        f"{source}: metrics.port: the container has no address to scrape it at "
        '(network.mode = "none"); serve it on "veth" or "host"',
    ]
    assert problems(data, '''
        [container]
        image = "busybox"
        [network]
        mode = "container:db"
        egress_rate = "1mbit"
        [metrics]
        port = 9100
    ''') == [
        f"{source}: network.egress_rate: not allowed with a joined network (container:db): set "
        "it on the container that owns the network",
        f"{source}: metrics.port: the address is the joined network's (container:db): declare "
        "the port in that container's [metrics]",
    ]


def test_persisted_updates_go_to_their_tables(disk: str) -> None:
    first = limits.parse({"io_read_bps": f"{disk}:10M", "egress_rate": "1mbit"})
    text = dropins.with_resources("", first)
    second = limits.parse({"io_read_bps": "254:16:2M", "memory_high": "100M"})
    document = tomllib.loads(dropins.with_resources(text, second))
    assert document == {
        "resources": {"io_read_bps": {disk: 10 * MIB, "254:16": 2 * MIB},
                      "memory_high": 100 * MIB},
        "network": {"egress_rate": "1mbit"},
    }


def test_status_shows_the_limits_as_a_definition_writes_them(disk: str) -> None:
    resources = limits.parse({"io_read_bps": f"{disk}:10M,254:16:max", "memory_high": "100M",
                              "io_write_iops": f"{disk}:300", "ingress_rate": "10mbit"})
    assert show.limits(limits.to_json(resources)) == (
        f"memory_high=100M io_read_bps={disk}:10M,254:16:max io_write_iops={disk}:300 "
        "ingress_rate=10mbit")


# --- the API, ctrctl update and ctrctl run -----------------------------------------------------

@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Ctl]:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock"):
        yield Ctl(backend, tmp_path / "ctrd.sock", tmp_path)


def test_the_api_takes_them_and_names_a_bad_one(tmp_path: Path, disk: str) -> None:
    backend = FakeBackend(tmp_path)
    major, minor = numbers(disk)
    with served(backend, tmp_path / "ctrd.sock"):
        api = Api(backend, tmp_path / "ctrd.sock")
        response = api.request("PATCH", "/v1/containers/web/resources", {
            "io_write_bps": {disk: "5M"}, "egress_rate": "10mbit", "memory_swap_max": 0})
        assert response.status == 200, response.body
        error = api.error("PATCH", "/v1/containers/web/resources",
                          400, {"ingress_rate": "fast"})
    assert backend.updates == [("web", Resources(
        io_write_bps=(DeviceLimit(disk, major, minor, 5 * MIB),), egress_rate=1_250_000,
        memory_swap_max=0))]
    assert error["error"].startswith("ingress_rate: not a rate: 'fast'")


def test_ctrctl_update_takes_them_as_docker_spells_devices(ctl: Ctl, disk: str) -> None:
    major, minor = numbers(disk)
    result = ctl("update", "web", "--io-read-bps", f"{disk}:10M", "--io-write-iops",
                 f"{major}:{minor}:200", "--egress-rate", "20mbit", "--memory-high", "1G")
    assert (result.returncode, result.stdout) == (0, "web\n"), result.stderr
    assert ctl.backend.updates == [("web", Resources(
        io_read_bps=(DeviceLimit(disk, major, minor, 10 * MIB),),
        io_write_iops=(DeviceLimit(f"{major}:{minor}", major, minor, 200),),
        egress_rate=2_500_000, memory_high=1 << 30))]
    assert ctl.fails("update", "web", "--io-read-bps", "/dev/nonexistent-lim:1M") == (
        "ctrctl: io_read_bps: block device /dev/nonexistent-lim: No such file or directory")


@pytest.mark.parametrize("verb", ["run", "update"])
def test_help_names_every_new_flag(ctl: Ctl, verb: str) -> None:
    result = ctl(verb, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag, words in (("--memory-high", "throttled"), ("--memory-swap-max", "swap"),
                        ("--io-read-bps", "bytes read per second on a block device"),
                        ("--io-write-bps", "bytes written"), ("--io-read-iops", "reads"),
                        ("--io-write-iops", "writes"),
                        ("--egress-rate", "bandwidth out of the container"),
                        ("--ingress-rate", "bandwidth into the container")):
        assert flag in text and words in text, flag
