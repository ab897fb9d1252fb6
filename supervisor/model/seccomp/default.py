"""The default profile: the semantics of docker's (moby's) default, as ctr's own data.

Allowed: the ordinary system calls (below), plus, by argument: ``clone`` and ``unshare`` without
namespace flags, ``socket`` of every family but AF_VSOCK, ``personality`` only for the personas
docker allows (and the 0xffffffff query). By capability, as docker adds them: the mount family,
``setns``, ``unshare``, namespace-making ``clone``/``clone3``, ``bpf`` and ``perf_event_open`` with
CAP_SYS_ADMIN; ``ptrace`` and friends with CAP_SYS_PTRACE (and on kernels from 4.8, where ptrace
can no longer step around seccomp); ``reboot`` with CAP_SYS_BOOT; module loading with
CAP_SYS_MODULE; and so on. Without CAP_SYS_ADMIN ``clone3`` answers ENOSYS, because its flags sit
behind a pointer no filter can read, so libcs fall back to ``clone``, whose flags it can. Every
other call fails with EPERM; calls newer than everything named here get ENOSYS from the stub
the compiler puts in front (see :mod:`.bpf`).

Where this differs from moby's list: ``unshare`` without namespace flags is allowed (moby allows
no ``unshare`` without CAP_SYS_ADMIN; unsharing files or fs is harmless); the unprivileged calls
of kernels 6.5 to 6.10 (cachestat, fchmodat2, the futex2 calls, map_shadow_stack, mseal) are
allowed so a current libc gets what it expects rather than EPERM; rules for architectures ctr
does not build for (s390, ppc, mips, riscv) are left out.
"""

from __future__ import annotations

import errno

from supervisor.model.namespaces import ALL_NAMESPACES
from supervisor.model.seccomp.profile import Action, Condition, Match, Profile, Rule

_ALLOW = Action("SCMP_ACT_ALLOW")

# Allowed whatever the arguments and capabilities.
_ORDINARY = """
    _llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset
    chdir chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64
    clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range
    connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
    epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve
    execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
    fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64
    fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64
    fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
    futex_waitv futex_wake futimesat get_robust_list get_thread_area getcpu getcwd getdents
    getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
    getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid
    gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
    inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64
    io_setup io_submit io_uring_enter io_uring_register io_uring_setup ioctl ioprio_get
    ioprio_set ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
    lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
    lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir
    mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify
    mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink
    mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at
    nanosleep newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
    pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
    prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
    readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max
    sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
    set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
    setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
    setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid
    setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
    sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx
    symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""

# Namespace flags of clone(2) and unshare(2); CLONE_NEWTIME (0x80) is unshare's only.
_CLONE_NAMESPACES = ALL_NAMESPACES
_CLONE_NEWTIME = 0x00000080
_AF_VSOCK = 40
# PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff: "which persona am I".
_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


def _rule(names: str, action: Action = _ALLOW, args: tuple[Condition, ...] = (),
          includes: Match | None = None, excludes: Match | None = None) -> Rule:
    return Rule(tuple(names.split()), action, args, includes or Match(), excludes or Match())


def _with(*capabilities: str) -> Match:
    return Match(caps=capabilities)


_SYS_ADMIN = "CAP_SYS_ADMIN"

DEFAULT = Profile(
    default_action=Action("SCMP_ACT_ERRNO", errno.EPERM),
    arch_map=(
        ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
        ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ),
    rules=(
        _rule(_ORDINARY),
        _rule("ptrace process_vm_readv process_vm_writev", includes=Match(min_kernel=(4, 8))),
        _rule("socket", args=(Condition(0, "SCMP_CMP_NE", _AF_VSOCK),)),
        *(_rule("personality", args=(Condition(0, "SCMP_CMP_EQ", persona),))
          for persona in _PERSONAS),
        _rule("arch_prctl", includes=Match(arches=("amd64", "x32"))),
        _rule("modify_ldt", includes=Match(arches=("amd64", "x32", "x86"))),
        _rule("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
              includes=Match(arches=("arm", "arm64"))),
        _rule("clone", args=(Condition(0, "SCMP_CMP_MASKED_EQ", _CLONE_NAMESPACES, 0),),
              excludes=_with(_SYS_ADMIN)),
        _rule("clone3", action=Action("SCMP_ACT_ERRNO", errno.ENOSYS),
              excludes=_with(_SYS_ADMIN)),
        _rule("unshare",
              args=(Condition(0, "SCMP_CMP_MASKED_EQ", _CLONE_NAMESPACES | _CLONE_NEWTIME, 0),),
              excludes=_with(_SYS_ADMIN)),
        _rule("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
              "mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd "
              "setdomainname sethostname setns syslog umount umount2 unshare",
              includes=_with(_SYS_ADMIN)),
        _rule("open_by_handle_at", includes=_with("CAP_DAC_READ_SEARCH")),
        _rule("reboot", includes=_with("CAP_SYS_BOOT")),
        _rule("chroot", includes=_with("CAP_SYS_CHROOT")),
        _rule("delete_module init_module finit_module", includes=_with("CAP_SYS_MODULE")),
        _rule("acct", includes=_with("CAP_SYS_PACCT")),
        _rule("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
              includes=_with("CAP_SYS_PTRACE")),
        _rule("iopl ioperm", includes=_with("CAP_SYS_RAWIO")),
        _rule("settimeofday stime clock_settime clock_settime64", includes=_with("CAP_SYS_TIME")),
        _rule("vhangup", includes=_with("CAP_SYS_TTY_CONFIG")),
        _rule("get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
              includes=_with("CAP_SYS_NICE")),
        _rule("syslog", includes=_with("CAP_SYSLOG")),
        _rule("bpf", includes=_with("CAP_BPF")),
        _rule("perf_event_open", includes=_with("CAP_PERFMON")),
    ),
    source="default",
)
