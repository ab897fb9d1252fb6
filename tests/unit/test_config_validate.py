"""Validation of one definition: every key checked, each error naming file, key and reason."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError
from supervisor.model.spec import (
    ContainerSpec,
    MountSpec,
    NamespaceJoins,
    NetworkSpec,
    PortMapping,
    Resources,
    RestartSpec,
)
from supervisor.model.units import CpuSet

BASE = '[container]\nimage = "busybox"\n'
_BIG = '"' + "y" * 100000 + '"'  # a TOML string of 100000 bytes


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with an image "busybox" (an empty directory) and a tarball image "alpine"."""
    (tmp_path / "data" / "images" / "busybox").mkdir(parents=True)
    (tmp_path / "data" / "images" / "alpine.tar.gz").write_bytes(b"")
    return tmp_path / "data"


def parse(data: Path, text: str, name: str = "web") -> ContainerSpec:
    source = data.parent / "etc" / f"{name}.toml"
    return loader.parse_text(name, textwrap.dedent(text), source=source, data_dir=data).spec


def error(data: Path, text: str, name: str = "web") -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        parse(data, text, name)
    return caught.value


def test_design_example(data: Path) -> None:
    spec = parse(data, '''
        [container]
        image = "busybox"
        command = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
        hostname = "web"
        user = "root"
        environment = { PORT = "8080" }
        working_dir = "/"
        read_only = false
        autostart = false
        privileged = false

        [[mounts]]
        source = "/srv/www"
        target = "/www"
        read_only = true

        [[mounts]]
        type = "tmpfs"
        target = "/tmp"
        size = "64M"

        [network]
        mode = "veth"
        address = "10.88.0.2/24"
        ports = ["8080:80/tcp"]

        [resources]
        memory_max = "256M"
        cpu_quota = "50%"
        cpu_weight = 100
        cpuset_cpus = "0"
        pids_max = 128

        [restart]
        policy = "on-failure"
        delay = "100ms"
        max_delay = "30s"
        burst = 5
        interval = "60s"
        reset_after = "10s"
        stop_timeout = "10s"

        [namespaces]
        ipc = "container:db"
        user = false
        ''')
    assert spec == ContainerSpec(
        name="web", image="busybox", command=("/bin/httpd", "-f", "-p", "8080", "-h", "/www"),
        hostname="web", user="root", environment=(("PORT", "8080"),), working_dir="/",
        mounts=(MountSpec(target="/www", source="/srv/www", read_only=True),
                MountSpec(target="/tmp", type="tmpfs", size=64 << 20)),
        network=NetworkSpec(address="10.88.0.2/24", ports=(PortMapping(8080, 80, "tcp"),)),
        resources=Resources(memory_max=256 << 20, cpu_quota=0.5, cpu_weight=100,
                            cpuset_cpus=CpuSet.of("0"), pids_max=128),
        restart=RestartSpec(policy="on-failure"),
        namespaces=NamespaceJoins(ipc="container:db"),
    )


def test_defaults(data: Path) -> None:
    assert parse(data, BASE) == ContainerSpec(name="web", image="busybox")


def test_values_in_other_accepted_forms(data: Path) -> None:
    spec = parse(data, '''
        [container]
        image = "alpine"
        user = "1000:100"
        [network]
        address = "10.88.200.3"
        ports = ["53:53/udp", "53:53/tcp", "8080:80"]
        [resources]
        memory_max = 1048576
        cpu_quota = "150%"
        pids_max = "max"
        [restart]
        delay = 0.5
        stop_timeout = 3
        stop_signal = "quit"
        ''')
    assert spec.image == "alpine"
    assert spec.network.address == "10.88.200.3/32"
    assert [p.protocol for p in spec.network.ports] == ["udp", "tcp", "tcp"]
    assert spec.resources == Resources(memory_max=1 << 20, cpu_quota=1.5)
    assert (spec.restart.delay, spec.stop.timeout) == (0.5, 3.0)
    assert spec.stop.signal == int(signal.SIGQUIT) and str(spec.stop.signal) == "SIGQUIT"
    assert parse(data, BASE + "[restart]\nstop_signal = 10\n").stop.signal == 10


def test_absolute_image_path(data: Path, tmp_path: Path) -> None:
    assert parse(data, f'[container]\nimage = "{tmp_path}"\n').image == str(tmp_path)


@pytest.mark.parametrize(("extra", "key", "reason"), [
    # [container]
    ('command = "/bin/sh"', "container.command", "expected a non-empty array of strings"),
    ("command = []", "container.command", "expected a non-empty array of strings"),
    ('command = ["/bin/sh", 1]', "container.command[1]", "expected a string, got integer 1"),
    ('command = ["", "x"]', "container.command[0]", "the program must not be empty"),
    ('command = ["/bin/sh\\u0000"]', "container.command[0]", "NUL"),
    ("environment = { PORT = 8080 }", "container.environment.PORT",
     "expected a string, got integer 8080"),
    ('environment = { "A=B" = "x" }', 'container.environment."A=B"',
     "not a valid environment variable name"),
    ('environment = ["A=B"]', "container.environment", "expected a table of strings"),
    ('hostname = "web_1"', "container.hostname", "not a valid host name: 'web_1'"),
    (f'hostname = "{"a" * 65}"', "container.hostname", "not a valid host name"),
    ('user = "root:"', "container.user", "not a user"),
    ('working_dir = "srv"', "container.working_dir", "must be an absolute path, got 'srv'"),
    ('read_only = "no"', "container.read_only", "expected true or false, got string 'no'"),
    ("autostart = 1", "container.autostart", "expected true or false, got integer 1"),
    ("privileged = []", "container.privileged", "expected true or false, got an array"),
    ('hostnme = "x"', "container.hostnme", "unknown key (did you mean hostname?)"),
    # [resources]
    ('[resources]\nmemory_max = "12Q"', "resources.memory_max",
     "not a size: '12Q' (use e.g. 512K, 256M, 2G)"),
    ("[resources]\nmemory_max = 1.5", "resources.memory_max", "got float 1.5"),
    ("[resources]\nmemory_max = 0", "resources.memory_max", "must be more than 0 bytes"),
    ('[resources]\ncpu_quota = "half"', "resources.cpu_quota", "not a CPU quota: 'half'"),
    ('[resources]\ncpu_quota = "x%"', "resources.cpu_quota", "not a CPU quota: 'x%'"),
    ('[resources]\ncpu_quota = "0%"', "resources.cpu_quota", "must be positive"),
    ("[resources]\ncpu_quota = true", "resources.cpu_quota", "not a CPU quota: True"),
    ("[resources]\ncpu_weight = 0", "resources.cpu_weight", "between 1 and 10000, got 0"),
    ("[resources]\ncpu_weight = 10001", "resources.cpu_weight", "between 1 and 10000"),
    ('[resources]\ncpu_weight = "lots"', "resources.cpu_weight", "expected an integer"),
    ('[resources]\ncpuset_cpus = "3-1"', "resources.cpuset_cpus", "not a CPU list: '3-1'"),
    ('[resources]\ncpuset_cpus = "a"', "resources.cpuset_cpus", "not a CPU list"),
    ("[resources]\ncpuset_cpus = 0", "resources.cpuset_cpus", "expected a string"),
    ("[resources]\npids_max = 0", "resources.pids_max", "between 1 and 2147483647, got 0"),
    ("[resources]\npids_max = true", "resources.pids_max", "expected an integer"),
    ("[resources]\nmemory = 5", "resources.memory", "unknown key (did you mean memory_max?)"),
    # [restart]
    ('[restart]\npolicy = "sometimes"', "restart.policy",
     "must be one of 'no', 'on-failure', 'always', got 'sometimes'"),
    ("[restart]\npolicy = false", "restart.policy", "expected a string"),
    ('[restart]\ndelay = "5 parsecs"', "restart.delay", "not a duration: '5 parsecs'"),
    ("[restart]\nstop_timeout = -1", "restart.stop_timeout", "must not be negative"),
    ('[restart]\ninterval = "-5s"', "restart.interval", "not a duration"),
    ("[restart]\nburst = -1", "restart.burst", "at least 0"),
    ('[restart]\nstop_signal = "SIGFOO"', "restart.stop_signal", "not a signal: 'SIGFOO'"),
    ("[restart]\nstop_signal = 0", "restart.stop_signal", "not a signal number: 0"),
    ('[restart]\ndelay = "1s"\nmax_delay = "500ms"', "restart.max_delay",
     "restart.max_delay (0.5s) is shorter than restart.delay (1s)"),
    # bounded by what the kernel and this host take (each once took ctrd down or failed late)
    ('[resources]\ncpuset_cpus = "0-99999999999"', "resources.cpuset_cpus",
     "CPU 99999999999 is beyond any machine"),
    ('[resources]\ncpuset_cpus = "0-100000"', "resources.cpuset_cpus", "beyond any machine"),
    ('[resources]\ncpuset_cpus = "0-4000"', "resources.cpuset_cpus", "is not on this host"),
    ('[resources]\ncpu_quota = "1e308%"', "resources.cpu_quota", "out of range: from 1% to"),
    ('[resources]\ncpu_quota = "1e309%"', "resources.cpu_quota", "must be positive and finite"),
    ('[resources]\ncpu_quota = "nan%"', "resources.cpu_quota", "must be positive and finite"),
    ('[resources]\ncpu_quota = "1000000%"', "resources.cpu_quota", "out of range"),
    ('[resources]\ncpu_quota = "0.5%"', "resources.cpu_quota", "out of range: from 1%"),
    pytest.param(f'command = ["/bin/echo", "{"x" * (10 << 20)}"]', "container.command[1]",
                 "the argument is 10485760 bytes long: the kernel takes at most 131071",
                 id="10M-argument"),
    pytest.param(f'command = ["/bin/echo", {", ".join([_BIG] * 11)}]',
                 "container.command", "at most 1048576 with the environment", id="1M-command"),
    pytest.param(f'environment = {{ BIG = "{"z" * 200000}" }}', "container.environment.BIG",
                 "the variable is 200004 bytes long", id="200K-variable"),
    pytest.param(f'command = ["/bin/echo", {", ".join([_BIG] * 6)}]\n'
                 f'environment = {{ {", ".join(f"V{i} = {_BIG}" for i in range(5))} }}',
                 "container.environment", "command and environment take", id="1M-together"),
    # [network]
    ('[network]\nmode = "bridge"', "network.mode",
     'must be "veth", "none", "host" or "container:NAME"'),
    ('[network]\naddress = "10.88.0.300/16"', "network.address",
     "not an IPv4 address in CIDR notation: '10.88.0.300/16' (use e.g. 10.88.0.2/16)"),
    ('[network]\naddress = "192.168.1.2/24"', "network.address",
     "192.168.1.2 is outside the address pool 10.88.0.0/16"),
    ('[network]\naddress = "10.88.0.1/16"', "network.address", "is the gateway of the pool"),
    ('[network]\naddress = "10.88.255.255/16"', "network.address", "broadcast address"),
    ('[network]\nports = ["80"]', "network.ports[0]",
     "not a port mapping: '80' (use [HOST_IP:]HOST:CONTAINER[/tcp|udp]"),
    ('[network]\nports = ["8080:80", "0:80"]', "network.ports[1]",
     "port 0 in '0:80' is out of range (1-65535)"),
    ('[network]\nports = ["8080:70000"]', "network.ports[0]", "70000"),
    ('[network]\nports = ["8080:80/sctp"]', "network.ports[0]", "not a port mapping"),
    ('[network]\nports = ["8080:80", "8080:81/tcp"]', "network.ports[1]",
     "host port 8080/tcp is mapped twice"),
    ('[network]\nports = "8080:80"', "network.ports", "expected an array of port mappings"),
    ('[network]\nmode = "host"\nports = ["8080:80"]', "network.ports",
     "needs network.mode = \"veth\" (it is 'host')"),
    ('[network]\nmode = "none"\naddress = "10.88.0.2/16"', "network.address",
     "needs network.mode = \"veth\" (it is 'none')"),
    ('[network]\nmode = "container:db"\naddress = "10.88.0.2/16"', "network.address",
     "not allowed with a joined network (container:db)"),
    ('[network]\nmode = "host"\n[namespaces]\nnet = "container:db"', "network.mode",
     "conflicts with namespaces.net = 'container:db'"),
    ('[network]\nmode = "container:a"\n[namespaces]\nnet = "container:b"', "network.mode",
     "conflicts with namespaces.net = 'container:b'"),
    ('[network]\nmode = "container:web"', "network.mode",
     "a container cannot join its own namespace"),
    # [[mounts]]
    ('[[mounts]]\nsource = "/srv"', "mounts[0].target", "missing: a mount needs a target"),
    ('[[mounts]]\nsource = "/srv"\ntarget = "www"', "mounts[0].target",
     "must be an absolute path, got 'www'"),
    ('[[mounts]]\nsource = "/srv"\ntarget = "/"', "mounts[0].target", "must not be /"),
    ('[[mounts]]\ntype = "tmpfs"\nsource = "/srv"\ntarget = "/tmp"', "mounts[0].source",
     'not allowed for type = "tmpfs"'),
    ('[[mounts]]\ntarget = "/www"', "mounts[0].source", "missing: a bind mount needs a source"),
    ('[[mounts]]\nsource = "srv"\ntarget = "/www"', "mounts[0].source",
     "must be an absolute path"),
    ('[[mounts]]\nsource = "/srv"\ntarget = "/www"\nsize = "1M"', "mounts[0].size",
     'only a mount of type = "tmpfs" has a size'),
    ('[[mounts]]\ntype = "tmpfs"\ntarget = "/tmp"\nsize = "lots"', "mounts[0].size",
     "not a size: 'lots'"),
    ('[[mounts]]\ntype = "nfs"\ntarget = "/x"', "mounts[0].type",
     "must be one of 'bind', 'tmpfs', got 'nfs'"),
    ('[[mounts]]\ntype = "tmpfs"\ntarget = "/tmp"\nmode = "1777"', "mounts[0].mode",
     "unknown key"),
    ('[mounts]\ntarget = "/x"', "mounts", "expected an array of tables ([[mounts]])"),
    ('mounts = [1]', "container.mounts", "unknown key"),
    # [namespaces]
    ('[namespaces]\nipc = "db"', "namespaces.ipc", 'expected "container:NAME", got \'db\''),
    ('[namespaces]\npid = "container:no good"', "namespaces.pid", "invalid container name"),
    ('[namespaces]\nuts = "container:web"', "namespaces.uts", "cannot join its own namespace"),
    ('[namespaces]\nuser = "yes"', "namespaces.user", "expected true or false"),
    ('[namespaces]\ncgroup = "container:db"', "namespaces.cgroup", "unknown key"),
    ('[namespaces]\nuser = true\nipc = "container:db"', "namespaces.user",
     "cannot be combined with joining the namespaces of db"),
    ('[network]\nmode = "container:db"\n[namespaces]\nuser = true', "namespaces.user",
     "cannot be combined with joining the namespaces of db"),
    ('hostname = "x"\n[namespaces]\nuts = "container:db"', "container.hostname",
     "cannot be set: the UTS namespace is joined (container:db)"),
    # the document
    ('[resource]\nmemory_max = "1G"', "resource", "unknown key (did you mean resources?)"),
    ('[restart]\n[restart.x]\ny = 1', "restart.x", "unknown key"),
    ('[network]\n[[network.ports]]\nx = 1', "network.ports[0]", "expected a string, got a table"),
])
def test_invalid_value(data: Path, extra: str, key: str, reason: str) -> None:
    caught = error(data, BASE + extra + "\n")
    assert caught.key == key
    assert reason in caught.reason
    assert str(caught).startswith(f"{data.parent / 'etc' / 'web.toml'}: {key}: ")
    assert len(caught.problems) == 1, str(caught)


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("", "container.image", "missing: a definition needs an image"),
    ('[container]\ncommand = ["/bin/sh"]', "container.image", "missing"),
    ('container = "busybox"', "container", "expected a table ([container]), got string"),
    ('image = "busybox"', "image", "unknown key (put it under [container])"),
    ('[container]\nimage = "nothere"', "container.image",
     "image 'nothere' not found: looked for nothere, nothere.tar, "),
    ('[container]\nimage = "../busybox"', "container.image",
     "image '../busybox': not an image name (letters, digits, '_.-'), an absolute path or a "
     "reference"),
    ('[container]\nimage = "/does/not/exist"', "container.image",
     "image '/does/not/exist' not found: /does/not/exist does not exist"),
    ('[container]\nimage = ".hidden"', "container.image", "not an image name"),
    ("[container]\nimage = 5", "container.image", "expected a string, got integer 5"),
])
def test_invalid_document(data: Path, text: str, key: str, reason: str) -> None:
    caught = error(data, text + "\n")
    assert (caught.key, reason in caught.reason) == (key, True), str(caught)


def test_invalid_name(data: Path) -> None:
    caught = error(data, BASE, name="no good")
    assert caught.key is None
    assert str(caught).startswith(f"{data.parent / 'etc' / 'no good.toml'}: invalid container "
                                  "name 'no good'")


def test_every_problem_is_reported(data: Path) -> None:
    caught = error(data, BASE + 'command = "x"\n[resources]\npids_max = 0\ncpu_weight = 0\n'
                   "[restart]\nbogus = 1\n")
    assert [p.key for p in caught.problems] == [
        "container.command", "resources.cpu_weight", "resources.pids_max", "restart.bogus"]
    assert len(str(caught).splitlines()) == 4


def test_joined_network(data: Path) -> None:
    spec = parse(data, BASE + '[network]\nmode = "container:db"\n')
    assert spec.network == NetworkSpec(mode="none")
    assert spec.namespaces == NamespaceJoins(net="container:db")
    same = parse(data, BASE + '[namespaces]\nnet = "container:db"\n')
    assert (same.network, same.namespaces) == (spec.network, spec.namespaces)
    both = parse(data, BASE + '[network]\nmode = "container:db"\n'
                 '[namespaces]\nnet = "container:db"\n')
    assert (both.network, both.namespaces) == (spec.network, spec.namespaces)


def test_durations_in_minutes(data: Path) -> None:
    spec = parse(data, BASE + '[restart]\nmax_delay = "2min"\ninterval = "1min 30s"\n')
    assert (spec.restart.max_delay, spec.restart.interval) == (120.0, 90.0)


def test_unlimited_removes_a_limit(data: Path) -> None:
    spec = parse(data, BASE + '[resources]\nmemory_max = "infinity"\ncpu_quota = "max"\n')
    assert spec.resources == Resources()


def test_error_names_the_dropin_that_set_the_value(tmp_path: Path, data: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "web.toml.d").mkdir(parents=True)
    (etc / "web.toml").write_text(BASE + '[resources]\nmemory_max = "1G"\ncpu_weight = 0\n'
                                  '[[mounts]]\nsource = "/srv"\ntarget = "/www"\n')
    dropin = etc / "web.toml.d" / "10-limits.toml"
    dropin.write_text('[resources]\nmemory_max = "12Q"\n[[mounts]]\ntype = "tmpfs"\n'
                      'target = "tmp"\n[network]\nprots = []\n')
    with pytest.raises(DefinitionError) as caught:
        loader.load("web", [etc], data_dir=data)
    assert [str(p) for p in caught.value.problems] == [
        f"{dropin}: mounts[0].target: must be an absolute path, got 'tmp'",
        f"{dropin}: network.prots: unknown key (did you mean ports?)",
        f"{dropin}: resources.memory_max: not a size: '12Q' (use e.g. 512K, 256M, 2G)",
        f"{etc / 'web.toml'}: resources.cpu_weight: must be between 1 and 10000, got 0",
    ]
