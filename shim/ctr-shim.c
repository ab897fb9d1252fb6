/*
 * ctr-shim: the parent of one container's PID 1, as conmon or containerd-shim are, and the
 * writer of its log.
 *
 * ctr's spawn handshake forks an intermediate that creates the container's pid namespace and
 * forks PID 1; the intermediate then execs this program, which stays PID 1's parent. Its first
 * job is the one a restarted ctrd cannot do: collect PID 1's exit status (waitid works only for a
 * parent), write it to the container's state directory, and exit with the same code. It is C,
 * not Python, because one runs per container: about 100 KiB each instead of megabytes.
 *
 * Its second job (--log-dir): PID 1's stdout and stderr are pipes whose read ends only the shim
 * holds. It writes what comes out of them to NAME.log as records of the CRI log format, one a
 * line: "2026-12-01T10:11:12.123456789Z stdout F the line" (F: the line ends here; P: it goes
 * on in a later record); the first record of a run is "... stdout P " with nothing after it.
 * Before a record would take the file past --max-size it rotates: NAME.log.(N-2) becomes
 * NAME.log.(N-1), ..., NAME.log becomes NAME.log.1, and a new NAME.log begins (N: --max-files;
 * with 1, NAME.log is replaced). One writer that rotates between two records loses no line and
 * splits none, and it does not depend on ctrd: the log goes on while ctrd restarts or is gone.
 * With --journal, every record is also written into that socket, which ctrd reads to send the
 * lines to the journal; a full socket blocks the shim (and so, in time, the container's
 * writes), so that the journal misses nothing while ctrd restarts, and one whose reader is gone
 * for good (EPIPE) is dropped, the file going on alone.
 *
 * usage: ctr-shim [--log-dir FD --log-name NAME --max-size BYTES --max-files N --stdout FD
 *                  --stderr FD [--journal FD]] PID [DIR_FD]
 * FDs are inherited descriptors: the log files' directory, the read ends of PID 1's pipes, the
 * relay's socket, the state directory. The status is written as "CODE UNIX_TIME\n" to DIR_FD/exit
 * via exit.tmp and rename, so a reader never sees half a file. CODE is the exit status, or
 * 128 + N for a death by signal N.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 16384 /* most output read at once, so the most content a record holds */
#define BATCH 1023  /* iovecs written at once (IOV_MAX is 1024) */
#define CARRY_MS 50 /* how long the start of a line waits for its end before it goes to the
                     * journal as a part */

struct log {
    int dir;              /* where the files are */
    const char *name;     /* NAME.log; rotated ones are NAME.log.1 .. */
    long long max_size;   /* 0: no log */
    int max_files;
    int fd;               /* NAME.log, appended to; -1 while it cannot be opened */
    long long size;       /* its size after our last write (ctrd's own lines included) */
    int journal;          /* the relay's socket, -1 if none (any more) */
    int failing;          /* a failure was reported, none since */
};

struct stream {
    int fd;               /* the read end of PID 1's pipe, -1 once it ended */
    const char *label;    /* "stdout" or "stderr" */
    char carry[PIPE_BUF]; /* the start of a line, waiting for its end to go to the journal */
    size_t carried;
};

struct batch {            /* records gathered for one writev */
    struct iovec iov[BATCH];
    int count;
    long long bytes;
};

static char chunk[CHUNK];
static struct batch batch;
static char staged[PIPE_BUF]; /* records for the journal's socket, written together */
static size_t staged_len;

static int parse_int(const char *text, int *out) {
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno || *end || end == text || value < 0 || value > 0x7fffffff)
        return -1;
    *out = (int)value;
    return 0;
}

static int parse_size(const char *text, long long *out) {
    char *end;

    errno = 0;
    *out = strtoll(text, &end, 10);
    return errno || *end || end == text || *out <= 0 ? -1 : 0;
}

static void record(int dir, int code) {
    char line[64];
    struct timespec now;
    int fd, len;

    clock_gettime(CLOCK_REALTIME, &now);
    len = snprintf(line, sizeof line, "%d %lld.%06ld\n", code, (long long)now.tv_sec,
                   now.tv_nsec / 1000);
    fd = openat(dir, "exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("ctr-shim: exit.tmp");
        return;
    }
    if (write(fd, line, (size_t)len) != len || close(fd) < 0) {
        perror("ctr-shim: write exit.tmp");
        return;
    }
    if (renameat(dir, "exit.tmp", dir, "exit") < 0)
        perror("ctr-shim: rename exit");
}

/* -- the files ------------------------------------------------------------------------------ */

static void complain(struct log *log, const char *what) {
    if (!log->failing)
        fprintf(stderr, "ctr-shim: %s: %s: %s\n", log->name, what, strerror(errno));
    log->failing = 1;
}

static void file_name(char *out, size_t size, const struct log *log, int index) {
    if (index == 0)
        snprintf(out, size, "%s", log->name);
    else
        snprintf(out, size, "%s.%d", log->name, index);
}

static void open_log(struct log *log) {
    struct stat st;

    log->fd = openat(log->dir, log->name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log->fd < 0) {
        complain(log, "open");
        log->size = 0;
        return;
    }
    log->size = fstat(log->fd, &st) == 0 ? st.st_size : 0;
}

/* Files beyond --max-files, left by a definition that kept more. */
static void remove_extra(const struct log *log) {
    char name[PATH_MAX];
    int index;

    for (index = log->max_files; index < log->max_files + 1000; index++) {
        file_name(name, sizeof name, log, index);
        if (unlinkat(log->dir, name, 0) < 0 && errno == ENOENT)
            break;
    }
}

static void rotate(struct log *log) {
    char from[PATH_MAX], to[PATH_MAX];
    int index;

    if (log->fd >= 0)
        close(log->fd);
    if (log->max_files == 1 && unlinkat(log->dir, log->name, 0) < 0 && errno != ENOENT)
        complain(log, "remove");
    for (index = log->max_files - 1; index >= 1; index--) {
        file_name(from, sizeof from, log, index - 1);
        file_name(to, sizeof to, log, index);
        if (renameat(log->dir, from, log->dir, to) < 0 && errno != ENOENT)
            complain(log, "rotate");
    }
    open_log(log);
}

/* All of iov[0..count) to fd, however much each write takes. */
static int write_all(int fd, const struct iovec *iov, int count) {
    ssize_t done;
    size_t skip, left;
    const char *at;
    int index;

    while ((done = writev(fd, iov, count)) < 0)
        if (errno != EINTR)
            return -1;
    skip = (size_t)done;
    for (index = 0; index < count; index++) {
        if (skip >= iov[index].iov_len) {
            skip -= iov[index].iov_len;
            continue;
        }
        at = (const char *)iov[index].iov_base + skip;
        left = iov[index].iov_len - skip;
        skip = 0;
        while (left > 0) {
            done = write(fd, at, left);
            if (done < 0 && errno == EINTR)
                continue;
            if (done < 0)
                return -1;
            at += done;
            left -= (size_t)done;
        }
    }
    return 0;
}

/* The records staged, in one write. Records for the journal are cut to fit PIPE_BUF, so that
 * ctrd, which takes only whole records out of the socket, always finds some in what it peeks. */
static void journal_flush(struct log *log) {
    ssize_t done = 0;

    while (staged_len > 0 && (done = write(log->journal, staged, staged_len)) < 0 &&
           errno == EINTR)
        ;
    if (done < 0) {
        if (errno != EPIPE)
            perror("ctr-shim: journal socket");
        close(log->journal); /* its reader is gone for good: the file goes on alone */
        log->journal = -1;
    }
    staged_len = 0;
}

/* "2026-12-01T10:11:12.123456789Z stdout F " and its P twin, for the records of one read. */
struct prefix {
    char full[96], partial[96];
    size_t width;
};

static void stamp(struct prefix *prefix, const char *label) {
    struct timespec now;
    struct tm tm;
    int len;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    len = snprintf(prefix->full, sizeof prefix->full,
                   "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s F ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec,
                   label);
    memcpy(prefix->partial, prefix->full, (size_t)len + 1);
    prefix->partial[len - 2] = 'P';
    prefix->width = (size_t)len;
}

/* A line's record for the journal, in pieces (P) that fit in PIPE_BUF each. */
static void journal_record(struct log *log, const struct prefix *prefix, const char *line,
                           size_t size, int ends) {
    size_t width = prefix->width, piece;

    do {
        piece = size < PIPE_BUF - width - 1 ? size : PIPE_BUF - width - 1;
        if (staged_len + width + piece + 1 > PIPE_BUF)
            journal_flush(log);
        memcpy(staged + staged_len, ends && piece == size ? prefix->full : prefix->partial,
               width);
        memcpy(staged + staged_len + width, line, piece);
        staged[staged_len + width + piece] = '\n';
        staged_len += width + piece + 1;
        line += piece;
        size -= piece;
    } while (size > 0);
}

static void carry_out(struct log *log, struct stream *stream, const struct prefix *prefix) {
    if (stream->carried) {
        journal_record(log, prefix, stream->carry, stream->carried, 0);
        stream->carried = 0;
    }
}

static void flush(struct log *log) {
    struct stat st;

    if (batch.count == 0)
        return;
    if (log->fd < 0 || (fstat(log->fd, &st) == 0 && st.st_nlink == 0)) {
        if (log->fd >= 0)
            close(log->fd); /* removed from under us: begin a new one */
        open_log(log);
    }
    if (log->fd >= 0) {
        if (write_all(log->fd, batch.iov, batch.count) < 0)
            complain(log, "write");
        else
            log->failing = 0;
        log->size = fstat(log->fd, &st) == 0 ? st.st_size : log->size + batch.bytes;
    }
    batch.count = 0;
    batch.bytes = 0;
}

/* Room for a record of ``size`` bytes in three iovecs: in the batch, and in the file. */
static void room(struct log *log, long long size) {
    if (batch.count + 3 > BATCH)
        flush(log);
    if (log->size + batch.bytes + size > log->max_size && log->size + batch.bytes > 0) {
        flush(log);
        rotate(log);
    }
}

static void add(const void *base, size_t len) {
    batch.iov[batch.count].iov_base = (void *)base;
    batch.iov[batch.count].iov_len = len;
    batch.count++;
    batch.bytes += (long long)len;
}

/* A line for the journal. A part of one waits (a while: see write_log) for the rest, so that a
 * line read in two goes to ctrd as one record: ctrd takes records out of the socket one by one,
 * and a part taken would be lost if ctrd were killed before the rest came. */
static void journal_line(struct log *log, struct stream *stream, const struct prefix *prefix,
                         const char *line, size_t size, int ends) {
    if (stream->carried + size > sizeof stream->carry) {
        carry_out(log, stream, prefix); /* too long to wait for whole */
    } else if (stream->carried || !ends) {
        memcpy(stream->carry + stream->carried, line, size);
        stream->carried += size;
        if (ends) {
            journal_record(log, prefix, stream->carry, stream->carried, 1);
            stream->carried = 0;
        }
        return;
    }
    journal_record(log, prefix, line, size, ends);
}

static void file_record(struct log *log, struct stream *stream, const struct prefix *prefix,
                        const char *line, size_t size, int ends) {
    (void)stream;
    room(log, (long long)(prefix->width + size + 1));
    add(ends ? prefix->full : prefix->partial, prefix->width);
    add(line, size);
    add("\n", 1);
}

typedef void record_fn(struct log *, struct stream *, const struct prefix *, const char *, size_t,
                       int);

/* ``emit`` the record of each line of ``len`` bytes of output (``ends``: a newline ended
 * it), and of the rest after the last newline as a part of one. */
static void each_line(struct log *log, struct stream *stream, const struct prefix *prefix,
                      const char *data, size_t len, record_fn *emit) {
    const char *end = data + len, *newline;
    size_t size;

    do {
        newline = memchr(data, '\n', (size_t)(end - data));
        size = (size_t)((newline ? newline : end) - data);
        emit(log, stream, prefix, data, size, newline != NULL);
        data += size + (newline ? 1 : 0);
    } while (data < end);
}

/* The records of what one read got: into the file first, then into the journal's socket (which
 * may block while no ctrd reads: the file has them meanwhile). */
static void records(struct log *log, struct stream *stream, const char *data, size_t len) {
    struct prefix prefix;

    stamp(&prefix, stream->label);
    each_line(log, stream, &prefix, data, len, file_record);
    flush(log);
    if (log->journal >= 0) {
        each_line(log, stream, &prefix, data, len, journal_line);
        journal_flush(log);
    }
}

/* The lines begun that waited long enough, to the journal as parts. */
static void carry_all_out(struct log *log, struct stream *streams) {
    struct prefix prefix;
    int index;

    for (index = 0; index < 2; index++) {
        if (streams[index].carried) {
            stamp(&prefix, streams[index].label);
            carry_out(log, &streams[index], &prefix);
        }
    }
    journal_flush(log);
}

/* -- the pipes ------------------------------------------------------------------------------ */

enum { ENDED, WAITING, READ };

static int pump(struct log *log, struct stream *stream) {
    ssize_t got = read(stream->fd, chunk, sizeof chunk);

    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return errno == EINTR ? READ : WAITING;
    if (got <= 0) {
        close(stream->fd);
        stream->fd = -1;
        return ENDED;
    }
    records(log, stream, chunk, (size_t)got);
    return READ;
}

/* Write what PID 1 and its descendants print until PID 1 has ended, then what is left. */
static void write_log(struct log *log, struct stream *streams, int pid) {
    struct pollfd fds[3];
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), count, index, slot[2], ready;

    remove_extra(log);
    open_log(log);
    records(log, &streams[0], "", 0); /* the mark of a run's beginning */
    for (;;) {
        count = 0;
        for (index = 0; index < 2; index++) {
            slot[index] = -1;
            if (streams[index].fd >= 0) {
                slot[index] = count;
                fds[count++] = (struct pollfd){.fd = streams[index].fd, .events = POLLIN};
            }
        }
        if (pidfd < 0 && count == 0)
            break; /* nothing to read, and no way to hear of PID 1 but waitpid */
        if (pidfd >= 0)
            fds[count++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        ready = poll(fds, (nfds_t)count, streams[0].carried || streams[1].carried ? CARRY_MS : -1);
        if (ready == 0)
            carry_all_out(log, streams); /* no rest came: the parts go as they are */
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("ctr-shim: poll");
            break;
        }
        for (index = 0; index < 2; index++)
            if (slot[index] >= 0 && fds[slot[index]].revents)
                pump(log, &streams[index]);
        if (pidfd >= 0 && fds[count - 1].revents)
            break;
    }
    /* PID 1 has ended, and with it every process of its pid namespace: the rest of what they
     * wrote, without waiting for a process outside that may hold a pipe still. */
    for (index = 0; index < 2; index++) {
        if (streams[index].fd < 0)
            continue;
        fcntl(streams[index].fd, F_SETFL, O_NONBLOCK);
        while (pump(log, &streams[index]) == READ)
            ;
        if (streams[index].fd >= 0)
            close(streams[index].fd);
    }
    carry_all_out(log, streams);
    if (pidfd >= 0)
        close(pidfd);
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"log-dir", required_argument, NULL, 'd'}, {"log-name", required_argument, NULL, 'n'},
        {"max-size", required_argument, NULL, 's'}, {"max-files", required_argument, NULL, 'k'},
        {"stdout", required_argument, NULL, 'o'}, {"stderr", required_argument, NULL, 'e'},
        {"journal", required_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    struct log log = {.dir = -1, .name = NULL, .max_size = 0, .max_files = 1, .fd = -1,
                      .journal = -1};
    static struct stream streams[2] = {{.fd = -1, .label = "stdout"},
                                       {.fd = -1, .label = "stderr"}};
    int pid, dir = -1, status, code, option, bad = 0;

    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'd': bad |= parse_int(optarg, &log.dir); break;
        case 'n': log.name = optarg; break;
        case 's': bad |= parse_size(optarg, &log.max_size); break;
        case 'k': bad |= parse_int(optarg, &log.max_files) || log.max_files < 1; break;
        case 'o': bad |= parse_int(optarg, &streams[0].fd); break;
        case 'e': bad |= parse_int(optarg, &streams[1].fd); break;
        case 'j': bad |= parse_int(optarg, &log.journal); break;
        default: bad = 1;
        }
    }
    if (log.dir >= 0 && (!log.name || log.max_size <= 0 || streams[0].fd < 0 ||
                         streams[1].fd < 0))
        bad = 1;
    argc -= optind;
    argv += optind;
    if (bad || argc < 1 || argc > 2 || parse_int(argv[0], &pid) < 0 ||
        (argc == 2 && parse_int(argv[1], &dir) < 0)) {
        fprintf(stderr, "usage: ctr-shim [--log-dir FD --log-name NAME --max-size BYTES "
                        "--max-files N --stdout FD --stderr FD [--journal FD]] PID [DIR_FD]\n");
        return 125;
    }
    if (log.dir >= 0) {
        signal(SIGPIPE, SIG_IGN); /* a journal socket without a reader fails with EPIPE */
        write_log(&log, streams, pid);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("ctr-shim: waitpid");
            return 125;
        }
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (dir >= 0)
        record(dir, code);
    return code;
}
