/*
 * echo: the server behind a published port, "echo tcp|udp PORT". Every request is answered
 * with "HOSTNAME PEER REQUEST" (the request's trailing newline dropped), so a test sees which
 * container answered and from which address the connection reached it. TCP: one request per
 * connection, then the server closes it; UDP: one datagram back per datagram. IPv4, every
 * address of the container; "listening" on stdout once bound.
 *
 * "echo ask tcp|udp ADDRESS PORT TEXT" is its client, for a request from inside a container
 * (busybox's nc has no UDP): it prints the answer, or exits 1 after 5 s without one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int answer(char *reply, size_t size, const char *request, ssize_t length,
                  const struct sockaddr_in *peer) {
    char host[64] = "?", address[INET_ADDRSTRLEN] = "?";
    gethostname(host, sizeof host - 1);
    inet_ntop(AF_INET, &peer->sin_addr, address, sizeof address);
    while (length > 0 && request[length - 1] == '\n')
        length--;
    return snprintf(reply, size, "%s %s %.*s\n", host, address, (int)length, request);
}

static int ask(int tcp, const char *address, const char *port, const char *text) {
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    struct timeval timeout = {.tv_sec = 5};
    char reply[4300];
    int sock = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (inet_pton(AF_INET, address, &server.sin_addr) != 1
        || connect(sock, (struct sockaddr *)&server, sizeof server)
        || write(sock, text, strlen(text)) < 0) {
        perror("echo: ask");
        return 1;
    }
    ssize_t length = read(sock, reply, sizeof reply);
    if (length <= 0) {
        perror("echo: no answer");
        return 1;
    }
    fwrite(reply, 1, length, stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "ask") == 0)
        return ask(strcmp(argv[2], "tcp") == 0, argv[3], argv[4], argv[5]);
    if (argc != 3 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "udp"))) {
        fprintf(stderr, "usage: echo tcp|udp PORT | echo ask tcp|udp ADDRESS PORT TEXT\n");
        return 2;
    }
    int tcp = strcmp(argv[1], "tcp") == 0, one = 1;
    int sock = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    struct sockaddr_in self = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(sock, (struct sockaddr *)&self, sizeof self) || (tcp && listen(sock, 64))) {
        perror("echo: bind");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    char request[4096], reply[4300];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t size = sizeof peer;
        if (tcp) {
            int conn = accept(sock, (struct sockaddr *)&peer, &size);
            if (conn < 0)
                continue;
            ssize_t length = read(conn, request, sizeof request);
            if (length > 0) {
                int n = answer(reply, sizeof reply, request, length, &peer);
                if (write(conn, reply, n) < 0)
                    perror("echo: write");
            }
            close(conn);
        } else {
            ssize_t length = recvfrom(sock, request, sizeof request, 0, (struct sockaddr *)&peer,
                                      &size);
            if (length < 0)
                continue;
            int n = answer(reply, sizeof reply, request, length, &peer);
            sendto(sock, reply, n, 0, (struct sockaddr *)&peer, size);
        }
    }
}
