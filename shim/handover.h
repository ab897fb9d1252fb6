/*
 * What both compiled front ends (ctr-runtime.c, ctrctl.c) do with a command line that is not
 * theirs: exec the Python command FALLBACK with the same arguments, before anything was done,
 * so that every message is Python's. A front end built to hand over to itself says so instead
 * of looping.
 */
#ifndef CTR_HANDOVER_H
#define CTR_HANDOVER_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FALLBACK
#error "FALLBACK, the path of the Python command, must be defined"
#endif

static _Noreturn void hand_over(const char *program, char **argv) {
    struct stat self, python;
    if (stat("/proc/self/exe", &self) == 0 && stat(FALLBACK, &python) == 0 &&
        self.st_dev == python.st_dev && self.st_ino == python.st_ino) {
        fprintf(stderr, "%s: %s is this front end, not the Python command\n", program, FALLBACK);
        exit(1);
    }
    execv(FALLBACK, argv);
    fprintf(stderr, "%s: cannot run %s: %s\n", program, FALLBACK, strerror(errno));
    exit(1);
}

#endif
