"""Finding and merging definitions: search path precedence, drop-ins, masking, load_all, render."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError, DefinitionNotFound
from supervisor.model.spec import NetworkSpec, Resources
from tests.conftest import REPO


@dataclass
class Dirs:
    etc: Path
    run: Path
    usr: Path
    data: Path

    @property
    def path(self) -> tuple[Path, ...]:
        return (self.etc, self.run, self.usr)


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    """A private search path (etc > run > usr/lib) and a data dir with an image "busybox"."""
    made = Dirs(tmp_path / "etc", tmp_path / "run", tmp_path / "usr", tmp_path / "data")
    for directory in (made.etc, made.run, made.usr, made.data / "images" / "busybox"):
        directory.mkdir(parents=True)
    return made


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def definition(image: str = "busybox", extra: str = "") -> str:
    return f'[container]\nimage = "{image}"\n{textwrap.dedent(extra)}'


def load(dirs: Dirs, name: str = "web") -> loader.Definition:
    return loader.load(name, dirs.path, data_dir=dirs.data)


def test_search_path_default_and_override(tmp_path: Path) -> None:
    assert loader.search_path(None, {}) == (Path("/etc/ctr"), Path("/run/ctr"),
                                            Path("/usr/lib/ctr"))
    assert loader.search_path(None, {"CTR_CONFIG_DIR": str(tmp_path)}) == (tmp_path,)
    assert loader.search_path(tmp_path / "flag", {"CTR_CONFIG_DIR": str(tmp_path)}) == (
        tmp_path / "flag",)


def test_etc_beats_run_beats_usr_lib(dirs: Dirs) -> None:
    for directory, command in ((dirs.usr, "usr"), (dirs.run, "run"), (dirs.etc, "etc")):
        write(directory / "web.toml", definition(extra=f'command = ["{command}"]'))
    assert load(dirs).spec.command == ("etc",)
    assert load(dirs).sources == (dirs.etc / "web.toml",)
    (dirs.etc / "web.toml").unlink()
    assert load(dirs).spec.command == ("run",)
    (dirs.run / "web.toml").unlink()
    assert load(dirs).spec.command == ("usr",)


def test_definition_names(dirs: Dirs) -> None:
    write(dirs.usr / "db.toml", definition())
    write(dirs.etc / "web.toml", definition())
    write(dirs.run / "web.toml", definition())
    write(dirs.run / "cache.toml", definition())
    write(dirs.etc / "ctrd.toml", "")  # the daemon's own configuration
    write(dirs.etc / ".hidden.toml", definition())
    write(dirs.etc / "notes.txt", "")
    write(dirs.etc / "web.toml.d" / "10-x.toml", "")  # a drop-in directory is not a definition
    # A hidden file is listed, not silently ignored: loading it says what is wrong.
    assert loader.definition_names(dirs.path) == [".hidden", "cache", "db", "web"]
    with pytest.raises(DefinitionNotFound):
        load(dirs, "ctrd")


def test_dropins_from_all_dirs_in_file_name_order(dirs: Dirs) -> None:
    write(dirs.usr / "web.toml", definition(extra='command = ["main"]'))
    write(dirs.usr / "web.toml.d" / "30-usr.toml", '[container]\ncommand = ["30"]\n')
    write(dirs.etc / "web.toml.d" / "10-etc.toml", '[container]\ncommand = ["10"]\n'
          'hostname = "from-10"\n')
    write(dirs.run / "web.toml.d" / "20-run.toml", '[container]\ncommand = ["20"]\n'
          'hostname = "from-20"\n')
    got = load(dirs)
    assert got.sources == (dirs.usr / "web.toml", dirs.etc / "web.toml.d" / "10-etc.toml",
                           dirs.run / "web.toml.d" / "20-run.toml",
                           dirs.usr / "web.toml.d" / "30-usr.toml")
    assert got.spec.command == ("30",)
    assert got.spec.hostname == "from-20"


def test_dropin_of_same_name_in_higher_dir_masks_lower(dirs: Dirs) -> None:
    write(dirs.etc / "web.toml", definition())
    write(dirs.usr / "web.toml.d" / "50-limits.toml", '[resources]\nmemory_max = "1G"\n'
          "pids_max = 10\n")
    write(dirs.etc / "web.toml.d" / "50-limits.toml", '[resources]\nmemory_max = "2G"\n')
    got = load(dirs)
    assert got.sources == (dirs.etc / "web.toml", dirs.etc / "web.toml.d" / "50-limits.toml")
    assert got.spec.resources == Resources(memory_max=2 << 30)  # pids_max was masked too


def test_link_to_dev_null_masks(dirs: Dirs) -> None:
    write(dirs.usr / "web.toml", definition())
    write(dirs.usr / "web.toml.d" / "50-limits.toml", "[resources]\npids_max = 10\n")
    (dirs.etc / "web.toml.d").mkdir()
    (dirs.etc / "web.toml.d" / "50-limits.toml").symlink_to("/dev/null")
    assert load(dirs).spec.resources.pids_max is None
    (dirs.etc / "web.toml").symlink_to("/dev/null")
    assert loader.definition_names(dirs.path) == []
    with pytest.raises(DefinitionNotFound):
        load(dirs)


def test_tables_merge_key_by_key_arrays_replace(dirs: Dirs) -> None:
    write(dirs.etc / "web.toml", definition(extra='''
        command = ["/bin/httpd", "-f"]
        environment = { A = "1", B = "2" }
        [[mounts]]
        source = "/srv/a"
        target = "/a"
        [[mounts]]
        source = "/srv/b"
        target = "/b"
        [resources]
        memory_max = "256M"
        cpu_weight = 50
        '''))
    write(dirs.etc / "web.toml.d" / "10.toml", '''
        [container]
        command = ["/bin/sh"]
        environment = { B = "two", C = "3" }
        [[mounts]]
        type = "tmpfs"
        target = "/tmp"
        [resources]
        cpu_weight = 200
        ''')
    got = load(dirs)
    assert got.spec.command == ("/bin/sh",)
    assert dict(got.spec.environment) == {"A": "1", "B": "two", "C": "3"}
    assert [m.target for m in got.spec.mounts] == ["/tmp"]
    assert got.spec.resources == Resources(memory_max=256 << 20, cpu_weight=200)
    assert got.data["resources"] == {"memory_max": "256M", "cpu_weight": 200}


def test_not_found_and_bad_name(dirs: Dirs) -> None:
    with pytest.raises(DefinitionNotFound, match=f"no definition 'web' in {dirs.etc}"):
        load(dirs)
    write(dirs.etc / "web.toml.d" / "10.toml", definition())  # drop-ins alone define nothing
    with pytest.raises(DefinitionNotFound):
        load(dirs)
    with pytest.raises(DefinitionError, match="invalid container name"):
        load(dirs, "../etc/web")
    bad = write(dirs.etc / "my web.toml", definition())
    errors = loader.load_all(dirs.path, data_dir=dirs.data)[1]
    assert str(errors["my web"]).startswith(f"{bad}: invalid container name 'my web'")


@pytest.mark.parametrize("filename", ["x" * 250 + ".toml", "...toml", ".web.toml"])
def test_a_file_whose_name_is_no_container_name_is_its_own_error(dirs: Dirs,
                                                                 filename: str) -> None:
    """A name too long for its drop-in directory (NAME.toml.d) once aborted every load."""
    bad = write(dirs.etc / filename, definition())
    write(dirs.etc / "web.toml", definition())
    good, errors = loader.load_all(dirs.path, data_dir=dirs.data)
    assert list(good) == ["web"]
    (name, error), = errors.items()
    assert name == filename.removesuffix(".toml")
    assert str(error).startswith(f"{bad}: invalid container name")
    assert "rename the file" in str(error)


def test_deeply_nested_toml_is_a_syntax_error(dirs: Dirs) -> None:
    write(dirs.etc / "web.toml", definition(extra="x = " + "[" * 100000 + "]" * 100000))
    with pytest.raises(DefinitionError, match="nested too deeply"):
        load(dirs)


def test_load_file_uses_dropins_beside_it(dirs: Dirs, tmp_path: Path) -> None:
    file = write(tmp_path / "elsewhere" / "app.toml", definition())
    write(tmp_path / "elsewhere" / "app.toml.d" / "10.toml", "[resources]\npids_max = 7\n")
    write(dirs.etc / "app.toml.d" / "20.toml", "[resources]\npids_max = 9\n")  # not beside it
    got = loader.load_file(file, data_dir=dirs.data)
    assert got.name == "app"
    assert got.spec.resources.pids_max == 7
    assert got.sources == (file, tmp_path / "elsewhere" / "app.toml.d" / "10.toml")
    with pytest.raises(DefinitionNotFound, match="no such file"):
        loader.load_file(tmp_path / "missing.toml", data_dir=dirs.data)


def test_parse_text_names_the_source(dirs: Dirs) -> None:
    source = dirs.etc / "api.toml"
    got = loader.parse_text("api", definition(), source=source, data_dir=dirs.data)
    assert got.spec.image == "busybox"
    assert loader.render(got).startswith(f"# {source}\n[container]")
    with pytest.raises(DefinitionError) as caught:
        loader.parse_text("api", definition(extra="bogus = 1"), source=source,
                          data_dir=dirs.data)
    assert str(caught.value).startswith(f"{source}: container.bogus: unknown key")
    assert not source.exists()


def test_render_is_like_systemctl_cat(dirs: Dirs) -> None:
    main = write(dirs.usr / "web.toml", definition())
    dropin = write(dirs.etc / "web.toml.d" / "10-limits.toml", "[resources]\npids_max = 5\n")
    assert loader.render(load(dirs)) == (
        f'# {main}\n[container]\nimage = "busybox"\n\n'
        f"# {dropin}\n[resources]\npids_max = 5\n")


def test_toml_syntax_error_keeps_line_and_column(dirs: Dirs) -> None:
    write(dirs.etc / "web.toml", definition())
    dropin = write(dirs.etc / "web.toml.d" / "10.toml", "[resources]\npids_max = = 5\n")
    with pytest.raises(DefinitionError) as caught:
        load(dirs)
    assert caught.value.source == dropin
    assert str(caught.value).startswith(f"{dropin}: invalid TOML: ")
    assert "line 2, column" in str(caught.value)


def test_load_all_keeps_the_good_definitions(dirs: Dirs) -> None:
    write(dirs.etc / "a.toml", definition())
    write(dirs.etc / "b.toml", definition(extra="command = []"))
    write(dirs.etc / "c.toml", "[container\n")
    write(dirs.etc / "d.toml", definition(image="missing"))
    write(dirs.etc / "e.toml", definition())
    good, bad = loader.load_all(dirs.path, data_dir=dirs.data)
    assert sorted(good) == ["a", "e"]
    assert sorted(bad) == ["b", "c", "d"]
    assert bad["b"].key == "container.command"
    assert "invalid TOML" in bad["c"].reason
    assert "image 'missing' not found" in bad["d"].reason


def test_join_must_name_an_existing_valid_definition(dirs: Dirs) -> None:
    write(dirs.etc / "db.toml", definition())
    write(dirs.etc / "app.toml", definition(extra='[network]\nmode = "container:db"\n'))
    write(dirs.etc / "orphan.toml", definition(extra='[network]\nmode = "container:nope"\n'))
    write(dirs.etc / "side.toml", definition(extra='[namespaces]\nipc = "container:broken"\n'))
    write(dirs.etc / "broken.toml", definition(extra="autostart = 1"))
    write(dirs.etc / "chained.toml", definition(extra='[namespaces]\npid = "container:side"\n'))
    good, bad = loader.load_all(dirs.path, data_dir=dirs.data)
    assert sorted(good) == ["app", "db"]
    assert good["app"].spec.network == NetworkSpec(mode="none")
    assert good["app"].spec.namespaces.joined() == {"net": "db"}
    assert str(bad["orphan"]) == (f"{dirs.etc / 'orphan.toml'}: network.mode: "
                                  "no definition named 'nope'")
    assert str(bad["side"]) == (f"{dirs.etc / 'side.toml'}: namespaces.ipc: "
                                "definition 'broken' is not valid")
    assert bad["chained"].key == "namespaces.pid"


def test_join_cycle(dirs: Dirs) -> None:
    write(dirs.etc / "a.toml", definition(extra='[namespaces]\nipc = "container:b"\n'))
    write(dirs.etc / "b.toml", definition(extra='[namespaces]\npid = "container:c"\n'))
    write(dirs.etc / "c.toml", definition(extra='[network]\nmode = "container:a"\n'))
    good, bad = loader.load_all(dirs.path, data_dir=dirs.data)
    assert good == {}
    assert bad["a"].reason == "joined namespaces form a cycle: a -> b -> c -> a"
    assert bad["c"].key == "network.mode"


def test_two_definitions_may_not_claim_one_address(dirs: Dirs) -> None:
    address = '[network]\naddress = "10.88.0.5/16"\n'
    write(dirs.etc / "a.toml", definition(extra=address))
    dropin = write(dirs.etc / "b.toml.d" / "net.toml", address)
    write(dirs.etc / "b.toml", definition())
    write(dirs.etc / "c.toml", definition(extra='[network]\naddress = "10.88.0.6/16"\n'))
    write(dirs.etc / "d.toml", definition(extra='[network]\nmode = "container:b"\n'))
    good, bad = loader.load_all(dirs.path, data_dir=dirs.data)
    assert sorted(good) == ["a", "c"]
    assert str(bad["b"]) == (f"{dropin}: network.address: 10.88.0.5 is also the address of "
                             "definition 'a'")
    assert bad["d"].reason == "definition 'b' is not valid"


def test_example_files_load_cleanly(tmp_path: Path) -> None:
    (tmp_path / "images" / "busybox").mkdir(parents=True)
    good, bad = loader.load_all([REPO / "etc"], data_dir=tmp_path)
    assert bad == {}
    assert sorted(good) == ["web"]
    web = good["web"]
    assert web.sources == (REPO / "etc" / "web.toml", REPO / "etc" / "web.toml.d" /
                           "10-limits.toml")
    assert web.spec.resources.memory_max == 64 << 20
    assert web.spec.network.ports[0].host_port == 8080
