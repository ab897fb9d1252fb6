/* What the seed exercise's three programs share: lines over a stream, a System V message
 * queue's messages, and failing loudly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LINE 512
#define TO_SERVER 1 /* message types on the queue */
#define TO_BRIDGE 2

struct message {
    long type;
    char text[LINE];
};

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

/* One line (with its newline) from fd into buf; 0 at EOF. */
static inline size_t read_line(int fd, char *buf, size_t size) {
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t got = read(fd, buf + n, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            die("read");
        if (got == 0)
            break;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return n;
}

static inline void write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t done = write(fd, buf, n);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            die("write");
        buf += done;
        n -= (size_t)done;
    }
}

static inline int queue(const char *key) {
    int id = msgget((key_t)strtol(key, NULL, 0), IPC_CREAT | 0600);
    if (id < 0)
        die("msgget");
    return id;
}

static inline struct sockaddr_un unix_address(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    return address;
}
