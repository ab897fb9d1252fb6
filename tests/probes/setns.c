/*
 * setns: join the namespace each PATH names (/proc/PID/ns/KIND). Prints "setns PATH: VERDICT"
 * for each: ENOENT when the path does not exist, what setns answered otherwise.
 *
 * usage: setns PATH...
 */
#include "probe.h"
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char what[4200];

    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY | O_CLOEXEC);

        snprintf(what, sizeof what, "setns %s", argv[i]);
        verdict(what, fd < 0 ? -1 : setns(fd, 0));
        if (fd >= 0)
            close(fd);
    }
    return 0;
}
