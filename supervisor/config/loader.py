"""Finding definitions in the search path and loading them, as systemd finds unit files.

``NAME.toml`` comes from the first directory of the path that has it (/etc/ctr over /run/ctr
over /usr/lib/ctr); drop-ins ``NAME.toml.d/*.toml`` come from every directory, merged in file
name order, and a drop-in masks one of the same file name in a lower directory. A main file or
drop-in that is a link to /dev/null masks (hides) the ones below it, as ``systemctl mask`` does.
``ctrd.toml`` in the same directories is the daemon's own configuration, not a definition.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from supervisor.config.crosscheck import crosscheck
from supervisor.config.definition import Definition
from supervisor.config.document import Document, read
from supervisor.config.errors import DefinitionError, DefinitionNotFound
from supervisor.config.validate import container_spec
from supervisor.model.defaults import CONFIG_PATH, POOL
from supervisor.model.errors import Invalid
from supervisor.model.names import container_name

__all__ = [
    "SEARCH_PATH", "Definition", "DefinitionError", "DefinitionNotFound",
    "definition_names", "find_files", "load", "load_all", "load_file", "parse_text", "render",
    "search_path",
]

SEARCH_PATH = CONFIG_PATH
CONFIG_DIR_ENV = "CTR_CONFIG_DIR"
DAEMON_CONFIG = "ctrd.toml"
SUFFIX = ".toml"
NAME_MAX = 255  # bytes in one file name (Linux)


def search_path(config_dir: Path | None = None,
                environ: Mapping[str, str] = os.environ) -> tuple[Path, ...]:
    """``config_dir`` (else ``$CTR_CONFIG_DIR``) alone if given: it replaces the whole path."""
    if config_dir is None and environ.get(CONFIG_DIR_ENV):
        config_dir = Path(environ[CONFIG_DIR_ENV])
    return (config_dir.absolute(),) if config_dir is not None else SEARCH_PATH


def definition_names(path: Sequence[Path]) -> list[str]:
    """Names of the definitions in ``path``, sorted; masked files are left out. A file whose
    name is no container name (hidden, too long) is listed too: loading it says why not."""
    names = {
        entry.name.removesuffix(SUFFIX)
        for directory in path for entry in _entries(directory, hidden=True)
        if entry.name.endswith(SUFFIX) and entry.name != DAEMON_CONFIG and not entry.is_dir()
    }
    return sorted(name for name in names if not _valid(name) or find_files(f"{name}{SUFFIX}", path))


def find_files(filename: str, path: Sequence[Path]) -> list[Path]:
    """The main file ``filename`` and its drop-ins in merge order; [] if missing or masked."""
    main = next((d / filename for d in path if (d / filename).exists()), None)
    if main is None or _masked(main):
        return []
    dropins: dict[str, Path] = {}
    for directory in reversed(path):  # lowest precedence first: higher ones replace its files
        for entry in _entries(directory / f"{filename}.d"):
            if entry.name.endswith(SUFFIX) and not entry.is_dir():
                dropins[entry.name] = Path(entry.path)
    return [main, *(dropins[name] for name in sorted(dropins) if not _masked(dropins[name]))]


def load(name: str, path: Sequence[Path], *, data_dir: Path,
         pool: str = POOL) -> Definition:
    """Definition ``name`` from the search path; raises ``DefinitionNotFound`` if there is none
    and ``DefinitionError`` (every problem, each with file and key) if it is not valid."""
    filename = f"{name}{SUFFIX}"
    try:
        container_name(name)
    except Invalid as e:
        file = next((d / filename for d in path if _valid_path(filename) and
                     (d / filename).exists()), None)
        raise DefinitionError(file, None, f"{e}{'; rename the file' if file else ''}") from None
    files = find_files(filename, path) if filename != DAEMON_CONFIG else []
    if not files:
        raise DefinitionNotFound(None, None, f"no definition {name!r} in "
                                 f"{', '.join(str(d) for d in path)}")
    return _definition(name, read(files), data_dir, pool)


def load_file(file: Path, *, data_dir: Path, pool: str = POOL) -> Definition:
    """The definition in ``file`` (named after it) with the drop-ins of ``FILE.d/`` beside it,
    wherever it is: for checking a file before installing it (``ctrctl check FILE``)."""
    if not file.is_file():
        raise DefinitionNotFound(file, None, "no such file")
    return _definition(file.name.removesuffix(SUFFIX),
                       read([file, *find_files(file.name, [file.parent])[1:]]), data_dir, pool)


def parse_text(name: str, text: str, *, source: Path, data_dir: Path,
               pool: str = POOL) -> Definition:
    """The definition ``text`` would be if stored at ``source`` (no drop-ins): for checking
    what a client sends before writing it."""
    document = Document()
    document.add(source, text)
    return _definition(name, document, data_dir, pool)


def load_all(path: Sequence[Path], *, data_dir: Path, pool: str = POOL
             ) -> tuple[dict[str, Definition], dict[str, DefinitionError]]:
    """Every definition in ``path``: the valid ones and, by name, why each other one is not."""
    definitions: dict[str, Definition] = {}
    errors: dict[str, DefinitionError] = {}
    for name in definition_names(path):
        try:
            definitions[name] = load(name, path, data_dir=data_dir, pool=pool)
        except DefinitionError as e:
            errors[name] = e
        except OSError as e:  # a directory of the path that cannot be read: that file's error
            errors[name] = DefinitionError(Path(e.filename) if e.filename else None, None,
                                           f"cannot read: {e.strerror or e}")
    crosscheck(definitions, errors)
    return definitions, errors


def render(definition: Definition) -> str:
    """The files of a definition as ``systemctl cat`` shows a unit's: each under a comment
    naming it, in merge order."""
    return "\n".join(f"# {source}\n{text.rstrip(chr(10))}\n"
                     for source, text in zip(definition.sources, definition.document.texts,
                                             strict=True))


def _definition(name: str, document: Document, data_dir: Path, pool: str) -> Definition:
    spec = container_spec(name, document, data_dir=data_dir, pool=pool)
    return Definition(name, spec, document.sources, document.data, document)


def _entries(directory: Path, hidden: bool = False) -> list[os.DirEntry[str]]:
    """The visible (or all) entries of ``directory``; none if it does not exist or cannot (a
    drop-in directory of a name too long for one)."""
    try:
        with os.scandir(directory) as entries:
            return [entry for entry in entries if hidden or not entry.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return []
        raise


def _valid(name: str) -> bool:
    try:
        container_name(name)
    except Invalid:
        return False
    return True


def _valid_path(filename: str) -> bool:
    return "/" not in filename and len(filename.encode()) <= NAME_MAX


def _masked(path: Path) -> bool:
    return path.resolve() == Path(os.devnull)
