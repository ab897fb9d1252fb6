/* The seed exercise's bridge: listens on 127.0.0.1:PORT of its network namespace (joined from A)
 * and relays each line of its one client to B and B's answer back: "bridge PORT msgq KEY" over
 * the System V queue KEY of its IPC namespace (joined from B), "bridge PORT unix PATH" over the
 * unix socket PATH of its file system (B's, its mount namespace joined). */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "seed.h"

static int listen_on(int port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int server = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(server, (struct sockaddr *)&address, sizeof address) < 0 || listen(server, 1) < 0)
        die("listen");
    return server;
}

static int connect_unix(const char *path) {
    struct sockaddr_un address = unix_address(path);
    for (int tries = 0; tries < 500; tries++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0)
            return fd;
        close(fd);
        usleep(20000);
    }
    die("connect");
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[2], "msgq") && strcmp(argv[2], "unix"))) {
        fprintf(stderr, "usage: bridge PORT msgq KEY | bridge PORT unix PATH\n");
        return 2;
    }
    int by_queue = !strcmp(argv[2], "msgq");
    int id = by_queue ? queue(argv[3]) : -1, server = by_queue ? -1 : connect_unix(argv[3]);
    int listener = listen_on(atoi(argv[1]));
    printf("listening\n");
    fflush(stdout);
    int client = accept(listener, NULL, NULL);
    char line[LINE];
    if (client < 0)
        die("accept");
    while (read_line(client, line, sizeof line) > 0) {
        if (by_queue) {
            struct message message = {.type = TO_SERVER}, reply;
            strcpy(message.text, line);
            if (msgsnd(id, &message, strlen(line) + 1, 0) < 0)
                die("msgsnd");
            if (msgrcv(id, &reply, sizeof reply.text, TO_BRIDGE, 0) < 0)
                die("msgrcv");
            write_all(client, reply.text, strlen(reply.text));
        } else {
            write_all(server, line, strlen(line));
            if (read_line(server, line, sizeof line) == 0)
                break;
            write_all(client, line, strlen(line));
        }
    }
    return 0;
}
