/*
 * ctr-init: a tiny init for PID 1 of a container, as tini, catatonit or systemd-nspawn's stub init.
 *
 * usage: ctr-init [--] PROGRAM [ARGS...]
 *
 * A command that is PID 1 of its pid namespace gets no default action for a signal it has no
 * handler for (the kernel drops the SIGTERM of a stop, which then waits for its timeout), and
 * every orphan of the container becomes its child, which it never waits for. This program is
 * PID 1 instead: it runs the command as its child (PID 2), forwards signals to it, reaps whatever
 * is reparented to it, and exits with the command's status: the exit code, or 128 + N for a death
 * by signal N, as ctr-shim records it for a command without init. 126 and 127 are an exec failure
 * (not executable, not found) as in shells, 125 a failure of the init itself.
 *
 * What it does, and why:
 * - Signals go to the command alone, not to its process group (tini's -g): a shell, nginx or
 *   postgres has its own way of stopping its children, and a signal to the group would reach them
 *   twice and unlike on a host. Whatever the command leaves behind dies with the namespace.
 * - Every catchable signal is forwarded, real-time ones and SIGTSTP/SIGTTIN/SIGTTOU too, except
 *   SIGCHLD, the init's own: it reaps.
 * - The command gets its own process group and, if stdin is the controlling terminal, becomes its
 *   foreground process group, so Ctrl-C, Ctrl-Z and window-size changes reach it directly and an
 *   interactive shell can do job control. What the terminal sends the init (a hangup goes to the
 *   session leader) is forwarded like the rest; it never stops the init, which blocks every
 *   signal, and so also writes to the terminal from the background without a SIGTTOU.
 * - The command starts with an empty signal mask and default dispositions, whatever the init
 *   inherited (a Python parent leaves SIGPIPE ignored across exec).
 * - The init exits as soon as the command has ended, without waiting for the other processes:
 *   the kernel then kills them all, and the shim sees the status once they are gone. So a
 *   container ends when its command does, with or without init, and a daemon left running in the
 *   background cannot keep it alive.
 * - LISTEN_PID (socket activation) names the init, PID 1; it is rewritten to the command's pid,
 *   or sd_listen_fds() in the command would refuse the descriptors. The init keeps no descriptor
 *   but stdio, so the command alone holds its sockets and pipe ends.
 * - The init is not dumpable: its /proc/1/exe may be a file of the host (exec'd through a
 *   descriptor), which no process of the container may open.
 * - Not PID 1 (a shared pid namespace), it is a child subreaper, so orphans still come to it.
 *
 * Signals are blocked from the start and read with rt_sigtimedwait: none is lost or handled
 * asynchronously, and the loop allocates nothing. The signal sets are the kernel's 64-bit word,
 * through raw system calls, because glibc refuses to block its two reserved real-time signals
 * (32 and 33), which would then kill the init. Linked statically: it is exec'd inside the
 * container's root, whose image may have no libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef unsigned long kernel_sigset; /* the kernel's sigset_t: one bit per signal 1..64 */

#define ALL_SIGNALS (~0UL)
#define LAST_SIGNAL 64

static int set_mask(kernel_sigset mask) {
    return (int)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
}

/* For the command, and for the init: an ignored SIGCHLD would make the kernel reap the command and
 * lose its status. */
static void default_dispositions(void) {
    /* The kernel's struct sigaction, zeroed: SIG_DFL, no flags, an empty mask. Through the system
     * call, since glibc's signal() refuses its own two (32 and 33), which a launcher may ignore. */
    static const unsigned long action[4];

    for (int sig = 1; sig <= LAST_SIGNAL; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, action, NULL, sizeof(kernel_sigset));
}

static void hand_on_listen_pid(void) {
    const char *value = getenv("LISTEN_PID");
    char pid[16];

    snprintf(pid, sizeof pid, "%d", (int)getppid());
    if (value && strcmp(value, pid) == 0) {
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("LISTEN_PID", pid, 1);
    }
}

static void run_command(char **argv) {
    int code;

    setpgid(0, 0);
    /* Allowed from a background process group because SIGTTOU is still blocked. ENOTTY: stdin is
     * not our controlling terminal; EBADF: there is no stdin. */
    if (tcsetpgrp(STDIN_FILENO, getpid()) < 0 && errno != ENOTTY && errno != EBADF)
        perror("ctr-init: terminal foreground");
    hand_on_listen_pid();
    set_mask(0);
    execvp(argv[0], argv);
    code = errno == ENOENT ? 127 : 126;
    fprintf(stderr, "ctr-init: %s: %s\n", argv[0], strerror(errno));
    _exit(code);
}

/* Collect every child that has ended; true once the command is among them. */
static int reap(pid_t command, int *status) {
    int found = 0, wstatus;
    pid_t pid;

    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
        if (pid == command) {
            *status = wstatus;
            found = 1;
        }
    }
    return found;
}

int main(int argc, char **argv) {
    kernel_sigset all = ALL_SIGNALS;
    siginfo_t info;
    pid_t command;
    int status;

    if (argc > 1 && strcmp(argv[1], "--") == 0) {
        argv++;
        argc--;
    }
    if (argc < 2) {
        fputs("usage: ctr-init [--] PROGRAM [ARGS...]\n", stderr);
        return 125;
    }
    /* Before the fork: a signal sent from now on waits for the loop below. */
    if (set_mask(all) < 0) {
        perror("ctr-init: block signals");
        return 125;
    }
    default_dispositions();
    prctl(PR_SET_DUMPABLE, 0);
    if (getpid() != 1)
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    command = fork();
    if (command < 0) {
        perror("ctr-init: fork");
        return 125;
    }
    if (command == 0)
        run_command(argv + 1);
    close_range(3, ~0U, 0);
    for (;;) {
        if (syscall(SYS_rt_sigtimedwait, &all, &info, NULL, sizeof all) < 0) {
            if (errno == EINTR)
                continue;
            perror("ctr-init: wait for signals");
            return 125;
        }
        if (info.si_signo != SIGCHLD)
            kill(command, info.si_signo);
        else if (reap(command, &status))
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}
