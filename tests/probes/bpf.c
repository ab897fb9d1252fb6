/*
 * bpf: load the smallest socket filter ("return 0"), never attached, freed at exit. Socket
 * filters are the program type the kernel lets anyone load where
 * kernel.unprivileged_bpf_disabled is 0, so there only the system-call filter refuses it.
 * Prints "bpf: VERDICT".
 */
#include "probe.h"
#include <linux/bpf.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    struct bpf_insn program[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr attr;

    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uintptr_t)program;
    attr.insn_cnt = sizeof program / sizeof program[0];
    attr.license = (uintptr_t)"GPL";
    verdict("bpf", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
    return 0;
}
