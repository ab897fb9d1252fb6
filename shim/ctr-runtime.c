/*
 * ctr-runtime's front end: the four commands an engine calls for every container (start,
 * state, kill, delete) answered without a Python interpreter, everything else handed to the
 * Python ctr-runtime by exec with the same arguments.
 *
 * podman calls its runtime three times per container (create, start, delete --force) and
 * containerd's shim calls state and kill besides; in Python each pays an interpreter's start
 * and argparse's import, about 30 ms, where runc takes 5. The Python command stays the one
 * implementation of the runtime: this program does only the plain case of those four, as that
 * one does it, reading the same state record (ROOT/ID/state.json, written by create). Whatever
 * is not plainly that case goes to Python before anything is done: a flag it does not know,
 * --debug, a record it cannot read, a state the command is refused in, hooks to run, kill
 * --all, a delete that must stop a process or a systemd scope. So every error and every
 * message is Python's, worded once (tests/e2e/test_oci_frontend.py holds the two to it).
 *
 * build: gcc -O2 -DFALLBACK='"/path/to/venv/bin/ctr-runtime"' ctr-runtime.c -ljson-c
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"

static char **all_args;

/* Python's ctr-runtime does it: the command as given. */
static _Noreturn void fallback(void) {
    hand_over("ctr-runtime", all_args);
}

/* An id as the Python side takes one: [A-Za-z0-9][A-Za-z0-9_.+-]{0,1023}. */
static int valid_id(const char *id) {
    size_t length = strlen(id);
    if (length == 0 || length > 1024 || !isalnum((unsigned char)id[0]))
        return 0;
    for (size_t i = 1; i < length; i++)
        if (!isalnum((unsigned char)id[i]) && !strchr("_.+-", id[i]))
            return 0;
    return 1;
}

struct record {
    json_object *json;
    char dir[PATH_MAX];
    char fifo[PATH_MAX]; /* PID 1 waits on it until start */
    long pid;
    long long pid_start; /* -1: none recorded */
};

static json_object *field(json_object *object, const char *key) {
    json_object *value = NULL;
    return json_object_object_get_ex(object, key, &value) ? value : NULL;
}

static const char *text(json_object *object, const char *key) {
    json_object *value = field(object, key);
    return json_object_is_type(value, json_type_string) ? json_object_get_string(value) : "";
}

static void load(struct record *r, const char *root, const char *id) {
    char path[PATH_MAX];
    if (snprintf(r->dir, sizeof r->dir, "%s/%s", root, id) >= (int)sizeof r->dir ||
        snprintf(path, sizeof path, "%s/state.json", r->dir) >= (int)sizeof path ||
        snprintf(r->fifo, sizeof r->fifo, "%s/exec.fifo", r->dir) >= (int)sizeof r->fifo)
        fallback();
    r->json = json_object_from_file(path);
    if (!json_object_is_type(r->json, json_type_object))
        fallback();
    json_object *pid = field(r->json, "pid"), *start = field(r->json, "pid_start");
    if (!json_object_is_type(pid, json_type_int))
        fallback();
    r->pid = json_object_get_int64(pid);
    r->pid_start = json_object_is_type(start, json_type_int) ? json_object_get_int64(start) : -1;
}

/* The process's start time (clock ticks since boot), -1 if it is gone or a zombie. */
static long long start_time(long pid) {
    char path[64], buffer[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (got <= 0)
        return -1;
    buffer[got] = '\0';
    char *rest = strrchr(buffer, ')'), *save = NULL;
    if (rest == NULL)
        return -1;
    char *word = strtok_r(rest + 1, " ", &save);
    if (word == NULL || *word == 'Z' || *word == 'X')
        return -1;
    for (int i = 1; i < 20 && word != NULL; i++)
        word = strtok_r(NULL, " ", &save);
    return word == NULL ? -1 : strtoll(word, NULL, 10);
}

static int alive(const struct record *r) {
    return r->pid_start >= 0 && start_time(r->pid) == r->pid_start;
}

static int frozen(const char *path) {
    char value[16] = "";
    int fd = *path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, value, sizeof value - 1);
    close(fd);
    value[got > 0 ? got : 0] = '\0';
    value[strcspn(value, "\n")] = '\0';
    return !strcmp(value, "FROZEN") || !strcmp(value, "FREEZING") || !strcmp(value, "1");
}

/* The runtime spec's status, as oci/state.py's Record.status reads it. */
static const char *status(const struct record *r) {
    if (r->pid == 0)
        return "creating";
    if (!alive(r))
        return "stopped";
    if (access(r->fifo, F_OK) == 0)
        return "created";
    return frozen(text(r->json, "freezer")) ? "paused" : "running";
}

static int has_hooks(const struct record *r, const char *kind) {
    json_object *listed = field(field(r->json, "hooks"), kind);
    return json_object_is_type(listed, json_type_array) && json_object_array_length(listed) > 0;
}

static void put(json_object *state, const char *key, json_object *value) {
    json_object_object_add(state, key, value);
}

static int state(const struct record *r) {
    const char *now = status(r);
    json_object *state = json_object_new_object(), *annotations = field(r->json, "annotations");
    put(state, "ociVersion", json_object_new_string(text(r->json, "oci_version")));
    put(state, "id", json_object_new_string(text(r->json, "id")));
    put(state, "pid", json_object_new_int64(strcmp(now, "stopped") ? r->pid : 0));
    put(state, "status", json_object_new_string(now));
    put(state, "bundle", json_object_new_string(text(r->json, "bundle")));
    put(state, "rootfs", json_object_new_string(text(r->json, "rootfs")));
    put(state, "created", json_object_new_string(text(r->json, "created")));
    put(state, "owner", json_object_new_string(text(r->json, "owner")));
    put(state, "annotations",
        annotations ? json_object_get(annotations) : json_object_new_object());
    int form = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
    puts(json_object_to_json_string_ext(state, form));
    return 0;
}

static int start(const struct record *r) {
    if (strcmp(status(r), "created") || has_hooks(r, "poststart"))
        fallback();
    int writer = open(r->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer < 0) /* ENXIO: PID 1 is gone; Python says so */
        fallback();
    ssize_t wrote = write(writer, "0", 1);
    close(writer);
    if (wrote != 1 || unlink(r->fifo) != 0)
        fallback();
    return 0;
}

/* 1..31 by number or name (TERM, SIGTERM, term), as model/signals.py reads them; 0 for any
 * other word, which Python reads or refuses (real-time signals, aliases, bad words). */
static int signal_number(const char *word) {
    if (*word && strspn(word, "0123456789") == strlen(word)) {
        long number = strlen(word) > 2 ? 0 : strtol(word, NULL, 10);
        return number >= 1 && number <= 31 ? (int)number : 0;
    }
    const char *name = strncasecmp(word, "SIG", 3) ? word : word + 3;
    for (int number = 1; number <= 31; number++) {
        const char *known = sigabbrev_np(number);
        if (known && !strcasecmp(name, known))
            return number;
    }
    return 0;
}

static int kill_container(const struct record *r, const char *word) {
    const char *now = status(r);
    int number = signal_number(word);
    if (!number || !(!strcmp(now, "created") || !strcmp(now, "running") || !strcmp(now, "paused")))
        fallback();
    int pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    if (pidfd < 0)
        fallback();
    if (!alive(r)) { /* the pid is another process's now */
        close(pidfd);
        fallback();
    }
    long sent = syscall(SYS_pidfd_send_signal, pidfd, number, NULL, 0);
    int error = errno;
    close(pidfd);
    if (sent < 0 && error != ESRCH)
        fallback();
    return 0;
}

static int remove_entry(const char *path, const struct stat *info, int kind, struct FTW *at) {
    (void)info, (void)kind, (void)at;
    remove(path);
    return 0;
}

/* A stopped container whose cgroupfs directories are empty: removed, each one's parent too if
 * left empty, then the state directory. Anything else goes to Python (cgroups.remove_if_empty
 * then the driver's destroy, or the kill of a live one). */
static int delete(const struct record *r) {
    json_object *cgroup = field(r->json, "cgroup");
    if (strcmp(status(r), "stopped") || has_hooks(r, "poststop"))
        fallback();
    if (json_object_is_type(cgroup, json_type_object) && json_object_object_length(cgroup)) {
        json_object *directories = field(cgroup, "directories");
        size_t count = json_object_is_type(directories, json_type_array)
                       ? json_object_array_length(directories) : 0;
        if (strcmp(text(cgroup, "driver"), "cgroupfs") || count == 0)
            fallback();
        for (size_t i = 0; i < count; i++) {
            const char *directory = json_object_get_string(
                json_object_array_get_idx(directories, i));
            if (directory && rmdir(directory) != 0 && errno != ENOENT)
                fallback();
        }
        for (size_t i = 0; i < count; i++) {
            char parent[PATH_MAX], *slash;
            const char *directory = json_object_get_string(
                json_object_array_get_idx(directories, i));
            if (!directory || snprintf(parent, sizeof parent, "%s", directory) >= PATH_MAX)
                continue;
            slash = strrchr(parent, '/');
            if (slash && slash != parent) {
                *slash = '\0';
                rmdir(parent); /* still the parent of others: kept */
            }
        }
    }
    nftw(r->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

int main(int argc, char **argv) {
    const char *root = "/run/ctr-runtime", *verb = NULL;
    int i = 1;
    all_args = argv;
    argv[0] = (char *)FALLBACK;
    /* The global flags before the command, as the Python parser takes them. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *flag = argv[i], *value = NULL;
        const char *equals = strchr(flag, '=');
        size_t length = equals ? (size_t)(equals - flag) : strlen(flag);
        if (!strcmp(flag, "--systemd-cgroup"))
            continue;
        if (!(length == 6 && !strncmp(flag, "--root", 6)) &&
            !(length == 5 && !strncmp(flag, "--log", 5)) &&
            !(length == 12 && !strncmp(flag, "--log-format", 12)) &&
            !(length == 10 && !strncmp(flag, "--rootless", 10)))
            fallback(); /* --debug, --help, --version, anything unknown */
        if (equals)
            value = equals + 1;
        else if (++i < argc)
            value = argv[i];
        else
            fallback();
        if (length == 6)
            root = value;
        else if (length == 12 && strcmp(value, "text") && strcmp(value, "json"))
            fallback();
        else if (length == 10 && strcmp(value, "auto") && strcmp(value, "false"))
            fallback();
    }
    if (i >= argc || !*root)
        fallback();
    verb = argv[i++];
    if (strcmp(verb, "state") && strcmp(verb, "start") && strcmp(verb, "kill") &&
        strcmp(verb, "delete"))
        fallback();
    /* The command's words: the id, and kill's signal. delete's --force changes nothing in the
     * plain case (a stopped container); kill --all goes to Python. */
    const char *words[2] = {NULL, NULL};
    int count = 0;
    for (; i < argc; i++) {
        if (!strcmp(verb, "delete") && (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")))
            continue;
        if (argv[i][0] == '-' || count == (strcmp(verb, "kill") ? 1 : 2))
            fallback();
        words[count++] = argv[i];
    }
    if (count == 0 || !valid_id(words[0]))
        fallback();
    struct record record;
    load(&record, root, words[0]);
    if (!strcmp(verb, "state"))
        return state(&record);
    if (!strcmp(verb, "start"))
        return start(&record);
    if (!strcmp(verb, "kill"))
        return kill_container(&record, words[1] ? words[1] : "SIGTERM");
    return delete(&record);
}
