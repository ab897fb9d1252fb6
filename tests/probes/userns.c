/*
 * userns: create a user namespace, map its root to ourselves, and mount a tmpfs in a mount
 * namespace it owns: what "root" of a namespace of one's own reaches (file systems, netfilter,
 * the kernel code behind most recent container escapes). Prints "userns: VERDICT" and, once
 * inside one, "userns-mount: VERDICT". The mount lands in a mount namespace of this process's
 * own, which ends with it.
 */
#include "probe.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int ok;

    if (fd < 0)
        return -1;
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok ? 0 : -1;
}

int main(void) {
    char uid_map[32], gid_map[32];

    snprintf(uid_map, sizeof uid_map, "0 %u 1", getuid());
    snprintf(gid_map, sizeof gid_map, "0 %u 1", getgid());
    if (unshare(CLONE_NEWUSER) < 0) {
        verdict("userns", -1);
        return 0;
    }
    verdict("userns", 0);
    /* Mapping one's own ids needs no privilege; setgroups must be denied before the gid map. */
    if (write_file("/proc/self/uid_map", uid_map) < 0 ||
        write_file("/proc/self/setgroups", "deny") < 0 ||
        write_file("/proc/self/gid_map", gid_map) < 0) {
        verdict("userns-map", -1);
        return 0;
    }
    verdict("userns-mount", unshare(CLONE_NEWNS) < 0 ? -1 : mount("none", "/tmp", "tmpfs", 0, NULL));
    return 0;
}
