/*
 * notify: tell readiness over sd_notify(3), as a service under systemd does: after SECONDS
 * (argv[1], default 0), send "STATUS=warming up", then "READY=1\nSTATUS=serving" to
 * $NOTIFY_SOCKET, saying each on stdout first; then wait until killed. With argv[2] = "die" it
 * exits with 3 instead of telling READY=1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int tell(const char *message) {
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    int sock;
    ssize_t sent;

    if (!path || strlen(path) >= sizeof(address.sun_path))
        return -1;
    strcpy(address.sun_path, path);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    sent = sendto(sock, message, strlen(message), 0, (struct sockaddr *)&address,
                  sizeof(address));
    close(sock);
    return sent < 0 ? -1 : 0;
}

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_term);
    printf("notify socket: %s\n", getenv("NOTIFY_SOCKET") ? getenv("NOTIFY_SOCKET") : "none");
    fflush(stdout);
    sleep(argc > 1 ? atoi(argv[1]) : 0);
    if (tell("STATUS=warming up") < 0)
        perror("sending STATUS");
    if (argc > 2 && strcmp(argv[2], "die") == 0) {
        printf("dying before ready\n");
        return 3;
    }
    printf("sending READY=1\n");
    fflush(stdout);
    if (tell("READY=1\nSTATUS=serving") < 0)
        perror("sending READY=1");
    for (;;)
        pause();
}
