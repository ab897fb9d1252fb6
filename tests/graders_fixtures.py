"""What the course graders bring along: a web-server base image and small mount tarballs.

The base image is the busybox image plus ``/webserver``: ``tiny.sh`` serves it with busybox httpd
on ``$PORT`` and CGI scripts print ``ps`` (``/cgi-bin/ps``), write into the mounts
(``/cgi-bin/write``) and stop the server (``/cgi-bin/kill``). Its root is wrapped in one
top-level directory, as graders' tarballs often are, which ctrd strips.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

TINY_SH = """#!/bin/sh
httpd -f -p "$PORT" -h /webserver &
echo $! > /tmp/httpd.pid
wait
"""

CGI = {
    "ps": "ps\n",
    # $PORT from the environment httpd passes on: which instance wrote the file
    "write": ("echo \"$PORT\" > /webserver/potato/owner.html && echo rw-ok\n"
              "touch /webserver/potato/tomato/x 2>/dev/null || echo ro-ok\n"),
    # answer first, then stop the server: the instance's PID 1 ends with it
    "kill": ('echo "stopping $(cat /tmp/httpd.pid)"\n'
             '{ sleep 0.2; kill "$(cat /tmp/httpd.pid)"; } >/dev/null 2>&1 &\n'),
}


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def build_base_image(busybox: Path, work: Path, dest: Path) -> None:
    """``dest`` (.tar.gz): ``basefs/`` holding the busybox image and ``/webserver``."""
    root = work / "basefs"
    shutil.copytree(busybox, root, symlinks=True)
    webserver = root / "webserver"
    (webserver / "cgi-bin").mkdir(parents=True)
    (webserver / "index.html").write_text("<p>index</p>\n")
    _executable(webserver / "tiny.sh", TINY_SH)
    for name, body in CGI.items():
        _executable(webserver / "cgi-bin" / name,
                    f"#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n{body}")
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(root, arcname="basefs")
    shutil.rmtree(root)


def build_html_tarball(dest: Path, directory: str) -> str:
    """``dest``: ``DIRECTORY/DIRECTORY.html``; returns the page's text."""
    text = f"<p>{directory}</p>\n"
    page = tarfile.TarInfo(f"{directory}/{directory}.html")
    page.size = len(text)
    top = tarfile.TarInfo(directory)
    top.type, top.mode = tarfile.DIRTYPE, 0o755
    with tarfile.open(dest, "w") as tar:
        tar.addfile(top)
        tar.addfile(page, io.BytesIO(text.encode()))
    return text
