/*
 * probe.h: the one line an escape probe prints per attempt, "WHAT: ok" or "WHAT: ERRNO"
 * (EPERM, ENOENT, ...), so a test reads the kernel's answer rather than an exit status.
 * Include it first: strerrorname_np needs _GNU_SOURCE before any system header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

static inline void verdict(const char *what, long result) {
    if (result < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: ok\n", what);
}
