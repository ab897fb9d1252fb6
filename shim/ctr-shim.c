/*
 * ctr-shim: the parent of one container's PID 1, as conmon or containerd-shim are.
 *
 * ctr's spawn handshake forks an intermediate that creates the container's pid namespace and
 * forks PID 1; the intermediate then execs this program, which stays PID 1's parent. Its one job
 * is the one a restarted ctrd cannot do: collect PID 1's exit status (waitid works only for a
 * parent), write it to the container's state directory, and exit with the same code. It is C,
 * not Python, because one runs per container: about 100 KiB each instead of megabytes.
 *
 * usage: ctr-shim PID [DIR_FD]   (DIR_FD: an inherited descriptor of the state directory)
 * The status is written as "CODE UNIX_TIME\n" to DIR_FD/exit via exit.tmp and rename, so a
 * reader never sees half a file. CODE is the exit status, or 128 + N for a death by signal N.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int parse_int(const char *text, int *out) {
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno || *end || end == text || value < 0 || value > 0x7fffffff)
        return -1;
    *out = (int)value;
    return 0;
}

static void record(int dir, int code) {
    char line[64];
    struct timespec now;
    int fd, len;

    clock_gettime(CLOCK_REALTIME, &now);
    len = snprintf(line, sizeof line, "%d %lld.%06ld\n", code, (long long)now.tv_sec,
                   now.tv_nsec / 1000);
    fd = openat(dir, "exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("ctr-shim: exit.tmp");
        return;
    }
    if (write(fd, line, (size_t)len) != len || close(fd) < 0) {
        perror("ctr-shim: write exit.tmp");
        return;
    }
    if (renameat(dir, "exit.tmp", dir, "exit") < 0)
        perror("ctr-shim: rename exit");
}

int main(int argc, char **argv) {
    int pid, dir = -1, status, code;

    if (argc < 2 || argc > 3 || parse_int(argv[1], &pid) < 0 ||
        (argc == 3 && parse_int(argv[2], &dir) < 0)) {
        fprintf(stderr, "usage: ctr-shim PID [DIR_FD]\n");
        return 125;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("ctr-shim: waitpid");
            return 125;
        }
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (dir >= 0)
        record(dir, code);
    return code;
}
