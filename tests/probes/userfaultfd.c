/*
 * userfaultfd: a user-mode-only userfaultfd, which vm.unprivileged_userfaultfd = 0 still
 * lets anyone create; exploits use it to stall the kernel at a chosen page fault and win a
 * race. Prints "userfaultfd: VERDICT".
 */
#include "probe.h"
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    verdict("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
    return 0;
}
