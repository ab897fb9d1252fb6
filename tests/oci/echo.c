/* B of the seed exercise, an echo server: "echo msgq KEY" answers each message of type 1 on
 * the System V queue KEY of its IPC namespace with "echo: TEXT" as type 2; "echo unix PATH"
 * answers each line of a client of the unix socket PATH of its file system. */
#include "seed.h"

static void over_queue(const char *key) {
    int id = queue(key);
    struct message message;
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        ssize_t n = msgrcv(id, &message, sizeof message.text, TO_SERVER, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("msgrcv");
        struct message reply = {.type = TO_BRIDGE};
        snprintf(reply.text, sizeof reply.text, "echo: %.*s", (int)n, message.text);
        if (msgsnd(id, &reply, strlen(reply.text) + 1, 0) < 0)
            die("msgsnd");
    }
}

static void over_socket(const char *path) {
    struct sockaddr_un address = unix_address(path);
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    unlink(path);
    if (bind(server, (struct sockaddr *)&address, sizeof address) < 0 || listen(server, 1) < 0)
        die("bind");
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int client = accept(server, NULL, NULL);
        char line[LINE], reply[LINE + 8];
        if (client < 0)
            die("accept");
        while (read_line(client, line, sizeof line) > 0) {
            snprintf(reply, sizeof reply, "echo: %s", line);
            write_all(client, reply, strlen(reply));
        }
        close(client);
    }
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "msgq") && strcmp(argv[1], "unix"))) {
        fprintf(stderr, "usage: echo msgq KEY | echo unix PATH\n");
        return 2;
    }
    if (!strcmp(argv[1], "msgq"))
        over_queue(argv[2]);
    else
        over_socket(argv[2]);
    return 0;
}
