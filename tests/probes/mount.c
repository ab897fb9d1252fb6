/*
 * mount: mount a tmpfs over /tmp, in the container's own mount namespace, and unmount it.
 * Prints "mount: VERDICT".
 */
#include "probe.h"
#include <sys/mount.h>

int main(void) {
    int result = mount("none", "/tmp", "tmpfs", 0, "size=1M");

    verdict("mount", result);
    if (result == 0)
        umount("/tmp");
    return 0;
}
