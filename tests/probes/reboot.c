/*
 * reboot: ask for LINUX_REBOOT_CMD_CAD_OFF with a wrong second magic number. The kernel checks
 * CAP_SYS_BOOT first (EPERM without it), then the magic numbers (EINVAL), so the call does
 * nothing whoever makes it: EINVAL shows it got past the capability check and the system-call
 * filter. (With the right magic, a pid namespace other than the host's turns CAD_OFF into
 * EINVAL too, and RESTART or POWER_OFF into killing that namespace's init; the wrong magic
 * keeps even a container whose pid namespace is the host's from touching anything.)
 * Prints "reboot: VERDICT".
 */
#include "probe.h"
#include <linux/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    verdict("reboot", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, 0, LINUX_REBOOT_CMD_CAD_OFF, NULL));
    return 0;
}
