#!/bin/sh
# Install ctr onto this host: ctrd, ctrctl and ctr-runtime, ctr-shim and ctr-init, the systemd
# units and the example definitions; then `systemctl daemon-reload` where systemd runs.
#   PREFIX      /usr/local        the commands go to PREFIX/bin, units to PREFIX/lib/systemd/system
#   CTR_VENV    PREFIX/lib/ctr/venv  the Python environment; made with pip when missing
#   DESTDIR     (empty)           staging root for packagers
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
ROOT=${DESTDIR:-}
BINDIR=$PREFIX/bin
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
VENV=${CTR_VENV:-$PREFIX/lib/ctr/venv}
SHIM=$REPO/supervisor/runtime/libexec/ctr-shim
INIT=$REPO/supervisor/runtime/libexec/ctr-init

if [ ! -x "$VENV/bin/ctrd" ]; then
    python3 -m venv "$ROOT$VENV"
    "$ROOT$VENV/bin/pip" install -q "$REPO"
fi
install -d "$ROOT$BINDIR" "$ROOT$UNITDIR" "$ROOT/usr/libexec/ctr" "$ROOT/etc/ctr"
ln -sf "$VENV/bin/ctrd" "$ROOT$BINDIR/ctrd"
# ctrctl: the compiled front end (a plain run through ctrd), the venv's for the rest
rm -f "$ROOT$BINDIR/ctrctl"  # an older install's link to the venv's: not written through
HEADERS=$(mktemp -d)
trap 'rm -rf "$HEADERS"' EXIT
PYTHON=$ROOT$VENV/bin/python  # its table is made from ctrctl run's parser, in that venv
[ -x "$PYTHON" ] || PYTHON=$VENV/bin/python
"$PYTHON" "$REPO/packaging/ctrctl-options" > "$HEADERS/ctrctl-options.h"
gcc -O2 -Wall -DFALLBACK="\"$VENV/bin/ctrctl\"" -I"$HEADERS" -o "$ROOT$BINDIR/ctrctl" \
    "$REPO/shim/ctrctl.c" -ljson-c
# ctr-runtime: the compiled front end (start, state, kill, delete), the venv's for the rest
rm -f "$ROOT$BINDIR/ctr-runtime"  # an older install's link to the venv's: not written through
gcc -O2 -Wall -DFALLBACK="\"$VENV/bin/ctr-runtime\"" -o "$ROOT$BINDIR/ctr-runtime" \
    "$REPO/shim/ctr-runtime.c" -ljson-c
[ -x "$SHIM" ] || gcc -O2 -Wall -o "$SHIM" "$REPO/shim/ctr-shim.c"
install -m 0755 "$SHIM" "$ROOT/usr/libexec/ctr/ctr-shim"
[ -x "$INIT" ] || gcc -static -s -O2 -Wall -o "$INIT" "$REPO/shim/ctr-init.c"
install -m 0755 "$INIT" "$ROOT/usr/libexec/ctr/ctr-init"
for unit in ctrd.service ctr@.service ctr@.socket ctr.slice; do
    sed "s|@BINDIR@|$BINDIR|g" "$REPO/units/$unit" > "$ROOT$UNITDIR/$unit"
    chmod 0644 "$ROOT$UNITDIR/$unit"
done
# Example definitions go with the documentation (ctrd would load them from /etc/ctr); ctrd's
# own settings file, all defaults, to /etc/ctr unless the administrator has one.
install -d "$ROOT$PREFIX/share/doc/ctr/examples"
cp -R "$REPO"/etc/. "$ROOT$PREFIX/share/doc/ctr/examples/"
[ -e "$ROOT/etc/ctr/ctrd.toml" ] || install -m 0644 "$REPO/etc/ctrd.toml" "$ROOT/etc/ctr/ctrd.toml"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
echo "installed ctr: $BINDIR/ctrd, $BINDIR/ctrctl, $BINDIR/ctr-runtime, units in $UNITDIR, examples in $PREFIX/share/doc/ctr/examples"
