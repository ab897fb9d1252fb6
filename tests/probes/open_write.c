/*
 * open_write: open each PATH for writing and close it again, never writing: whether a kernel
 * knob (/proc/sys, /sys, /proc/sysrq-trigger) could be changed, at no risk of changing it.
 * Prints "open-write PATH: VERDICT" for each.
 *
 * usage: open_write PATH...
 */
#include "probe.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char what[4200];

    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_WRONLY | O_CLOEXEC);

        snprintf(what, sizeof what, "open-write %s", argv[i]);
        verdict(what, fd);
        if (fd >= 0)
            close(fd);
    }
    return 0;
}
