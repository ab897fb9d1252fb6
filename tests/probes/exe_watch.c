/*
 * exe_watch: from inside a container, try to open /proc/PID/exe of every process that is
 * neither this program nor the image's busybox, until the file STOP exists. Each success is
 * printed at once ("opened PID SIZE"), then "watched N" at the end. A process joining the
 * container (ctrctl exec) is the host's interpreter until it execs: opening its exe is the
 * CVE-2019-5736 way to the host's binary.
 *
 * usage: exe_watch STOP
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int main(int argc, char **argv) {
    struct stat self, busybox, st;
    char path[288];
    unsigned long scans = 0;

    if (argc != 2 || stat("/proc/self/exe", &self) < 0 || stat("/bin/busybox", &busybox) < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("watching\n");
    while (access(argv[1], F_OK) < 0) {
        DIR *proc = opendir("/proc");
        struct dirent *entry;

        if (!proc)
            return 3;
        while ((entry = readdir(proc))) {
            int fd;

            if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
                continue;
            snprintf(path, sizeof path, "/proc/%s/exe", entry->d_name);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            if (fstat(fd, &st) == 0 && !same_file(&st, &self) && !same_file(&st, &busybox))
                printf("opened %s %lld\n", entry->d_name, (long long)st.st_size);
            close(fd);
        }
        closedir(proc);
        scans++;
    }
    printf("watched %lu\n", scans);
    return 0;
}
