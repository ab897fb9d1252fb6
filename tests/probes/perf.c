/*
 * perf: open a software counter of this process's own user-space time, which
 * kernel.perf_event_paranoid = 2 still lets anyone open: perf's code is reachable unless the
 * system-call filter refuses the call. Prints "perf_event_open: VERDICT".
 */
#include "probe.h"
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    struct perf_event_attr attr;

    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    verdict("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1,
                                       PERF_FLAG_FD_CLOEXEC));
    return 0;
}
