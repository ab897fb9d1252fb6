/*
 * read: open each PATH and read from it. Prints "read PATH: VERDICT" for each.
 *
 * usage: read PATH...
 */
#include "probe.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char what[4200], buffer[64];

    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY | O_CLOEXEC);

        snprintf(what, sizeof what, "read %s", argv[i]);
        verdict(what, fd < 0 ? -1 : read(fd, buffer, sizeof buffer));
        if (fd >= 0)
            close(fd);
    }
    return 0;
}
