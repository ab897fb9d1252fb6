/*
 * ptrace: attach to each PID with PTRACE_SEIZE, which does not stop the tracee; the kernel
 * detaches when this probe exits. A PID is looked up in the caller's pid namespace. Prints
 * "ptrace PID: VERDICT" for each.
 *
 * usage: ptrace PID...
 */
#include "probe.h"
#include <stdlib.h>
#include <sys/ptrace.h>

int main(int argc, char **argv) {
    char what[64];

    for (int i = 1; i < argc; i++) {
        snprintf(what, sizeof what, "ptrace %.40s", argv[i]);
        verdict(what, ptrace(PTRACE_SEIZE, atoi(argv[i]), NULL, NULL));
    }
    return 0;
}
