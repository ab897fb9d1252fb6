# Shared by the image builders in this folder (sourced, not run).
#
# An image is a directory under $DATA_DIR/images. A builder fills a temporary directory next to
# the target and renames it into place, so a reader never sees a half-built image, and holds a
# lock on the image's name so that two builders of the same image do not interleave.
# shellcheck shell=sh

die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# begin_build NAME: take NAME's lock, set IMAGES, TARGET and BUILD (an empty 0755 temp directory).
begin_build() {
    IMAGES="${DATA_DIR:-${CTR_DATA_DIR:-/var/lib/ctr}}/images"
    TARGET="$IMAGES/$1"
    mkdir -p "$IMAGES" || die "cannot create $IMAGES"
    exec 9>"$IMAGES/.$1.lock" || die "cannot open lock $IMAGES/.$1.lock"
    flock 9 || die "cannot lock $IMAGES/.$1.lock"
    # Left over by a builder that was killed: safe to drop, we hold the lock.
    rm -rf "$IMAGES/.$1.build."* "$IMAGES/.$1.old"
    BUILD=$(mktemp -d "$IMAGES/.$1.build.XXXXXX") || die "cannot create a temp dir in $IMAGES"
    trap 'rm -rf "$BUILD"' EXIT
    trap 'exit 1' HUP INT TERM
    chmod 0755 "$BUILD"
}

# finish_build: give every file the same timestamp (reproducible trees), then move BUILD to TARGET,
# replacing an earlier build.
finish_build() {
    find "$BUILD" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
    if [ -e "$TARGET" ] || [ -L "$TARGET" ]; then
        mv -T "$TARGET" "$IMAGES/.${TARGET##*/}.old" || die "cannot move the old $TARGET aside"
    fi
    mv -T "$BUILD" "$TARGET" || die "cannot rename $BUILD to $TARGET"
    rm -rf "$IMAGES/.${TARGET##*/}.old"
    echo "built $TARGET"
}
