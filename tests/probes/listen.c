/*
 * listen: a socket-activated server, as sd_listen_fds(3) would have it: it serves only the
 * descriptors it was given (LISTEN_FDS from fd 3, for LISTEN_PID = its own pid), answering each
 * connection with "hello from PID <pid> on fd <fd> (<name from LISTEN_FDNAMES>)". After COUNT
 * connections (argv[1]; default: never) it exits with 0, so the next one waits for a restart.
 * Without descriptors meant for it, it says so and exits with 2.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define START 3
#define MOST 16

int main(int argc, char **argv) {
    const char *pid = getenv("LISTEN_PID"), *count = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    char labels[MOST][256] = {{0}};
    struct pollfd fds[MOST];
    long served = 0, most = argc > 1 ? atol(argv[1]) : -1;
    int n, i;

    if (!pid || !count || atol(pid) != getpid() || (n = atoi(count)) < 1 || n > MOST) {
        printf("no sockets for me (LISTEN_PID=%s LISTEN_FDS=%s, my pid %d)\n",
               pid ? pid : "-", count ? count : "-", getpid());
        return 2;
    }
    for (i = 0; i < n; i++) {
        const char *end = names ? strchr(names, ':') : NULL;
        size_t len = names ? (end ? (size_t)(end - names) : strlen(names)) : 0;

        if (names) {
            snprintf(labels[i], sizeof(labels[i]), "%.*s", (int)len, names);
            names = end ? end + 1 : NULL;
        }
        fds[i].fd = START + i;
        fds[i].events = POLLIN;
    }
    printf("serving %d socket(s) as PID %d\n", n, getpid());
    fflush(stdout);
    while (most < 0 || served < most) {
        if (poll(fds, n, -1) < 0)
            return 1;
        for (i = 0; i < n; i++) {
            char line[512];
            int client;

            if (!(fds[i].revents & POLLIN) || (client = accept(fds[i].fd, NULL, NULL)) < 0)
                continue;
            snprintf(line, sizeof(line), "hello from PID %d on fd %d (%.255s)\n", getpid(),
                     fds[i].fd, labels[i]);
            if (write(client, line, strlen(line)) < 0)
                perror("write");
            close(client);
            served++;
        }
    }
    printf("served %ld connection(s)\n", served);
    return 0;
}
