/*
 * fds: print the descriptors this process was started with, one line: "0 1 2". Run as a
 * container's PID 1 or through ctrctl exec, it shows what the runtime let into the container
 * (the directory descriptor it reads /proc/self/fd with is left out).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    DIR *fds = opendir("/proc/self/fd");
    struct dirent *entry;
    int first = 1;

    if (!fds)
        return 2;
    while ((entry = readdir(fds))) {
        if (entry->d_name[0] == '.' || atoi(entry->d_name) == dirfd(fds))
            continue;
        printf(first ? "%s" : " %s", entry->d_name);
        first = 0;
    }
    printf("\n");
    closedir(fds);
    return 0;
}
