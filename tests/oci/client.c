/* A of the seed exercise: "client PORT" sends each line it reads on stdin to 127.0.0.1:PORT of
 * its network namespace and prints the answer line; it connects once the bridge listens. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "seed.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: client PORT\n");
        return 2;
    }
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)atoi(argv[1]))};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = -1;
    for (int tries = 0; tries < 500 && fd < 0; tries++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
            close(fd);
            fd = -1;
            usleep(20000);
        }
    }
    if (fd < 0)
        die("connect");
    char line[LINE];
    while (read_line(0, line, sizeof line) > 0) {
        write_all(fd, line, strlen(line));
        if (read_line(fd, line, sizeof line) == 0)
            break;
        fputs(line, stdout);
        fflush(stdout);
    }
    return 0;
}
