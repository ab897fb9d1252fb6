/*
 * shocker: the "shocker" escape opens files by handle, which names an inode of a whole file
 * system, not a path under the container's root: from a descriptor of a host directory bound
 * in, a forged handle (inode 2 of ext4) opens the host's "/". This probe reopens the real
 * handle of PATH, which passes the same check (CAP_DAC_READ_SEARCH, and the system-call
 * filter) without forging anything. Prints "open_by_handle_at: VERDICT" (or
 * "name_to_handle_at: VERDICT" when PATH has no handle).
 *
 * usage: shocker PATH
 */
#include "probe.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct file_handle *handle = malloc(sizeof *handle + MAX_HANDLE_SZ);
    int mount_id, mount_fd;

    if (argc != 2 || !handle)
        return 2;
    handle->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, argv[1], handle, &mount_id, 0) < 0) {
        verdict("name_to_handle_at", -1);
        return 0;
    }
    mount_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mount_fd < 0)
        return 3;
    verdict("open_by_handle_at", open_by_handle_at(mount_fd, handle, O_RDONLY | O_CLOEXEC));
    return 0;
}
