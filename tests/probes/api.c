/*
 * api: connect to a ctrd API socket at each PATH and ask it for the list of containers.
 * Prints "api PATH: STATUS-LINE" (e.g. "HTTP/1.1 200 OK") when ctrd answered, else
 * "api PATH: ERRNO".
 *
 * usage: api PATH...
 */
#include "probe.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char request[] = "GET /v1/containers HTTP/1.1\r\nHost: ctrd\r\nConnection: close\r\n\r\n";

/* The reply's first line, or -1 with errno set. */
static int ask(const char *path, char *line, size_t size) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ssize_t got;

    if (fd < 0)
        return -1;
    if (strlen(path) >= sizeof address.sun_path) {
        errno = ENAMETOOLONG;
        close(fd);
        return -1;
    }
    strcpy(address.sun_path, path);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 ||
        write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1) ||
        (got = read(fd, line, size - 1)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    close(fd);
    line[got] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    return 0;
}

int main(int argc, char **argv) {
    char what[4200], line[256];

    for (int i = 1; i < argc; i++) {
        snprintf(what, sizeof what, "api %s", argv[i]);
        if (ask(argv[i], line, sizeof line) < 0)
            verdict(what, -1);
        else
            printf("%s: %s\n", what, line);
    }
    return 0;
}
