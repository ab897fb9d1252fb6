/*
 * init_module: load an empty image, which can never become a module. The kernel checks
 * CAP_SYS_MODULE first (EPERM without it), then refuses the image (ENOEXEC); a kernel built
 * without module support (CONFIG_MODULES=n) answers ENOSYS to everyone. The system-call
 * filter answers EPERM before the kernel sees the call. Prints "init_module: VERDICT".
 */
#include "probe.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    static const char image[1];

    verdict("init_module", syscall(SYS_init_module, image, 0UL, ""));
    return 0;
}
