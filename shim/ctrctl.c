/*
 * ctrctl's front end: `ctrctl run CMD...` handed to ctrd without a Python interpreter, in the
 * plain case; everything else handed to the Python ctrctl by exec with the same arguments.
 *
 * Through ctrd, ctrctl run is three requests (run, with its stdio riding on the request; wait;
 * delete) around ctrd's own start, and ctrd's part takes about what a whole `runc run` takes.
 * In Python the client adds an interpreter and its imports, some 60 ms, to every run. This
 * program does what supervisor/cli/remote_run.py does, for the command lines it can read as
 * argparse reads them: the options of ctrctl run's parser (ctrctl-options.h, made from that
 * parser at build time) as typed, sent to ctrd, which reads every value with the model's
 * parsers as it reads Python's. It hands over, before anything is started: an option it does
 * not know or does not take itself (a terminal, --local, --stop-timeout, --help...), no
 * command, a global option other than --socket, --state-dir and --data-dir, $CTR_HOST or
 * $CTR_DEBUG, no ctrd answering, and a value ctrd refuses (nothing was made: Python asks again
 * and shows it as its usage error). So every usage message is Python's, worded once
 * (tests/e2e/test_ctrctl_frontend.py holds the two to it). Once the run is ctrd's it is this
 * program's to the end: it forwards signals, waits for the end (again after a ctrd restart),
 * removes the instance and exits with the command's status, in Python's words when anything
 * fails.
 *
 * build: packaging/ctrctl-options > ctrctl-options.h;
 *        gcc -O2 -DFALLBACK='"/path/to/venv/bin/ctrctl"' -I. ctrctl.c -ljson-c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctrctl-options.h"
#include "handover.h"

#define RUN_FAILED 125 /* docker's convention, as Python's ctrctl: run itself failed */
#define NSIGNALS (sizeof FORWARDED_SIGNALS / sizeof FORWARDED_SIGNALS[0])

static char **all_args;
static sigset_t original_mask;
static char socket_path[PATH_MAX];
static char name[256];
static int interactive; /* -i: the container reads ctrctl's stdin */

/* Python's ctrctl does it: the command line as given, with the signal mask it came with. */
static _Noreturn void fallback(void) {
    sigprocmask(SIG_SETMASK, &original_mask, NULL);
    hand_over("ctrctl", all_args);
}

/* Python's last words for a run that failed: `ctrctl: MESSAGE` on one line, status 125. */
static _Noreturn void fail(const char *message) {
    fputs("ctrctl: ", stderr);
    for (const char *c = message; *c; c++) {
        if (*c == '\n')
            fputs("; ", stderr);
        else
            fputc(*c, stderr);
    }
    fputc('\n', stderr);
    exit(RUN_FAILED);
}

/* -- the command line ------------------------------------------------------------------------ */

static const struct option_entry *lookup(const char *option) {
    for (size_t i = 0; i < sizeof RUN_OPTIONS / sizeof RUN_OPTIONS[0]; i++)
        if (!strcmp(RUN_OPTIONS[i].name, option))
            return &RUN_OPTIONS[i];
    return NULL;
}

/* The value of option argv[*i] (`--opt=V` or `--opt V`), or NULL: argparse would read it
 * otherwise (a value that looks like an option) or refuse it (none). */
static const char *value_of(char **argv, int argc, int *i, const char *inline_value) {
    if (inline_value)
        return inline_value;
    if (*i + 1 >= argc || argv[*i + 1][0] == '-')
        return NULL;
    return argv[++*i];
}

/* ctrctl's global options up to the verb: only where ctrd's socket is; the rest is Python's. */
static int read_globals(int argc, char **argv) {
    const char *given = getenv("CTR_SOCKET"), *state = getenv("CTR_STATE_DIR");
    const char *host = getenv("CTR_HOST");
    if ((host && *host) || getenv("CTR_DEBUG"))
        fallback(); /* another way to ctrd, or Python's tracebacks asked for */
    if ((given && !*given) || (state && !*state))
        fallback();
    if (!state)
        state = STATE_DIR;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        char option[64];
        const char *equals = strchr(argv[i], '=');
        size_t length = equals ? (size_t)(equals - argv[i]) : strlen(argv[i]);
        if (length >= sizeof option)
            fallback();
        memcpy(option, argv[i], length);
        option[length] = '\0';
        const char *value;
        if (strcmp(option, "--socket") && strcmp(option, "--state-dir") &&
            strcmp(option, "--data-dir"))
            fallback();
        if (!(value = value_of(argv, argc, &i, equals ? equals + 1 : NULL)) || !*value)
            fallback();
        if (!strcmp(option, "--socket"))
            given = value;
        else if (!strcmp(option, "--state-dir"))
            state = value;
    }
    int length = given ? snprintf(socket_path, sizeof socket_path, "%s", given)
                       : snprintf(socket_path, sizeof socket_path, "%s/ctrd.sock", state);
    if (length < 0 || length >= (int)sizeof socket_path ||
        length >= (int)sizeof((struct sockaddr_un *)0)->sun_path)
        fallback();
    if (i >= argc || strcmp(argv[i], "run"))
        fallback();
    return i + 1;
}

/* The run's options as typed, as supervisor/cli/runargs.py's options() gives them to ctrd. */
static json_object *read_run(int argc, char **argv, int i) {
    json_object *given = json_object_new_object();
    int groups[8] = {0}; /* the option of each mutually exclusive group seen, + 1 */
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--")) {
            i++;
            break;
        }
        if (arg[0] != '-' || !strcmp(arg, "-"))
            break; /* the command: everything from here is its own */
        char option[64];
        const char *equals = arg[1] == '-' ? strchr(arg, '=') : NULL;
        size_t length = equals ? (size_t)(equals - arg) : strlen(arg);
        if (length >= sizeof option)
            fallback();
        memcpy(option, arg, length);
        option[length] = '\0';
        const struct option_entry *entry = lookup(option); /* -eK=V and -it: Python's */
        if (!entry || entry->kind == HANDOVER)
            fallback();
        if (entry->group) {
            int seen = (int)(entry - RUN_OPTIONS) + 1;
            if (entry->group >= (int)(sizeof groups / sizeof groups[0]))
                fallback();
            if (groups[entry->group] && groups[entry->group] != seen &&
                strcmp(RUN_OPTIONS[groups[entry->group] - 1].key, entry->key))
                fallback(); /* argparse: not allowed with the other */
            groups[entry->group] = seen;
        }
        if (entry->kind == FLAG || entry->kind == IGNORED || entry->kind == STDIN) {
            if (equals)
                fallback(); /* argparse: ignored explicit argument */
            if (entry->kind == FLAG)
                json_object_object_add(given, entry->key, json_object_new_boolean(1));
            interactive |= entry->kind == STDIN;
            continue;
        }
        const char *value = value_of(argv, argc, &i, equals ? equals + 1 : NULL);
        if (!value)
            fallback();
        if (entry->kind == VALUE) {
            json_object_object_add(given, entry->key, json_object_new_string(value));
            continue;
        }
        json_object *values = NULL;
        if (!json_object_object_get_ex(given, entry->key, &values)) {
            values = json_object_new_array();
            json_object_object_add(given, entry->key, values);
        }
        json_object_array_add(values, json_object_new_string(value));
    }
    if (i >= argc)
        fallback(); /* no command: the classic shell on a terminal */
    json_object *command = json_object_new_array();
    for (; i < argc; i++)
        json_object_array_add(command, json_object_new_string(argv[i]));
    json_object_object_add(given, "command", command);
    json_object *named = NULL;
    if (json_object_object_get_ex(given, "name", &named)) {
        if (snprintf(name, sizeof name, "%s", json_object_get_string(named)) >= (int)sizeof name)
            fallback(); /* longer than ctrd takes: Python's words for it */
    } else {
        unsigned char random[4];
        if (getrandom(random, sizeof random, 0) != sizeof random)
            fallback();
        snprintf(name, sizeof name, "run-%02x%02x%02x%02x", random[0], random[1], random[2],
                 random[3]);
        json_object_object_add(given, "name", json_object_new_string(name));
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        fallback();
    json_object_object_add(given, "cwd", json_object_new_string(cwd));
    return given;
}

/* -- one request to ctrd, as supervisor/cli/wire.py makes it --------------------------------- */

/* ABSENT: no socket, or nobody listening on it; UNREACHABLE: it would not take the connection
 * (nothing was sent); LOST: the connection broke before ctrd answered. */
enum outcome { ANSWERED, ABSENT, UNREACHABLE, LOST };

struct answer {
    int status;
    json_object *body; /* NULL when empty */
};

/* A new connection with the request sent (``fds`` on its first bytes); -1 and *outcome if it
 * did not go out. */
static int send_request(const char *method, const char *target, json_object *body,
                        const int *fds, int nfds, enum outcome *outcome) {
    const char *data = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : "";
    size_t data_length = strlen(data);
    char *message = NULL;
    int length = asprintf(&message, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          method, target, data_length, data);
    if (length < 0)
        fail("out of memory");
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strcpy(address.sun_path, socket_path); /* its length is checked in read_globals */
    if (sock < 0 || connect(sock, (struct sockaddr *)&address, sizeof address) < 0) {
        *outcome = errno == ENOENT || errno == ECONNREFUSED ? ABSENT : UNREACHABLE;
        if (sock >= 0)
            close(sock);
        free(message);
        return -1;
    }
    size_t sent = 0;
    if (nfds) {
        char control[CMSG_SPACE(3 * sizeof(int))] = {0};
        struct iovec iov = {.iov_base = message, .iov_len = (size_t)length};
        struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                                .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
        struct cmsghdr *rights = CMSG_FIRSTHDR(&header);
        rights->cmsg_level = SOL_SOCKET;
        rights->cmsg_type = SCM_RIGHTS;
        rights->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(rights), fds, nfds * sizeof(int));
        ssize_t wrote = sendmsg(sock, &header, MSG_NOSIGNAL);
        if (wrote < 0)
            goto lost;
        sent = (size_t)wrote;
    }
    while (sent < (size_t)length) {
        ssize_t wrote = send(sock, message + sent, (size_t)length - sent, MSG_NOSIGNAL);
        if (wrote < 0) {
            if (errno == EINTR)
                continue;
            goto lost;
        }
        sent += (size_t)wrote;
    }
    free(message);
    return sock;
lost:
    close(sock);
    free(message);
    *outcome = LOST;
    return -1;
}

/* The body of a chunked answer, decoded in place. */
static void dechunk(char *body) {
    char *out = body, *in = body;
    for (;;) {
        char *end;
        unsigned long size = strtoul(in, &end, 16);
        char *line_end = strstr(in, "\r\n");
        if (size == 0 || !line_end || end > line_end)
            break;
        in = line_end + 2;
        if (strlen(in) < size)
            break;
        memmove(out, in, size);
        out += size;
        in += size + (strncmp(in + size, "\r\n", 2) ? 0 : 2);
    }
    *out = '\0';
}

/* Whether ``text`` holds a whole answer: its head and as much body as its Content-Length says
 * (none for 204 No Content). Then it is read without waiting for ctrd to close the connection,
 * which it does about a millisecond after answering (three times per run). Without one, the
 * answer ends with the connection. */
static int whole(const char *text, size_t size) {
    const char *end = strstr(text, "\r\n\r\n");
    int status = 0;
    if (!end)
        return 0;
    if (sscanf(text, "HTTP/%*s %d", &status) == 1 && status == 204)
        return 1;
    for (const char *line = strstr(text, "\r\n"); line && line < end;
         line = strstr(line + 2, "\r\n"))
        if (!strncasecmp(line + 2, "content-length:", 15))
            return size >= (size_t)(end - text) + 4 + strtoul(line + 17, NULL, 10);
    return 0;
}

/* The answer on ``sock`` (closed then): ANSWERED with its status and JSON, else LOST. */
static enum outcome read_answer(int sock, struct answer *answer) {
    size_t size = 0, capacity = 4096;
    char *text = malloc(capacity);
    if (!text)
        fail("out of memory");
    text[0] = '\0';
    while (!whole(text, size)) {
        if (size + 1 >= capacity && !(text = realloc(text, capacity *= 2)))
            fail("out of memory");
        ssize_t got = recv(sock, text + size, capacity - size - 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size += (size_t)got;
        text[size] = '\0';
    }
    close(sock);
    char *body = strstr(text, "\r\n\r\n");
    int status = 0;
    if (!body || sscanf(text, "HTTP/%*s %d", &status) != 1 || status < 100) {
        free(text);
        return LOST; /* closed without answering */
    }
    *body = '\0';
    body += 4;
    for (char *line = strstr(text, "\r\n"); line; line = strstr(line + 2, "\r\n"))
        if (!strncasecmp(line + 2, "transfer-encoding:", 18) && strcasestr(line, "chunked"))
            dechunk(body);
    answer->status = status;
    answer->body = *body ? json_tokener_parse(body) : NULL;
    free(text);
    return ANSWERED;
}

static const char *field_text(json_object *object, const char *key) {
    json_object *value = NULL;
    if (!json_object_object_get_ex(object, key, &value) ||
        json_object_is_type(value, json_type_null))
        return NULL;
    return json_object_get_string(value);
}

static enum outcome call(const char *method, const char *target, json_object *body,
                         const int *fds, int nfds, struct answer *answer) {
    enum outcome outcome;
    int sock = send_request(method, target, body, fds, nfds, &outcome);
    return sock < 0 ? outcome : read_answer(sock, answer);
}

/* The run ended in an error of ctrd's: its one-line `error`, as Python's ApiError says it. */
static _Noreturn void api_error(const struct answer *answer) {
    const char *error = answer->body ? field_text(answer->body, "error") : NULL;
    char status[32];
    snprintf(status, sizeof status, "HTTP %d", answer->status);
    fail(error && *error ? error : status);
}

static char *container(const char *action) {
    static char target[512];
    snprintf(target, sizeof target, "/v1/containers/%s%s%s", name, *action ? "/" : "", action);
    return target;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Once ctrd answers again after it went away (restarted, say). */
static void until_back(void) {
    fprintf(stderr, "ctrctl: lost ctrd at %s; waiting for it to come back (container %s runs "
            "on)\n", socket_path, name);
    double deadline = now() + RECONNECT_TIMEOUT;
    for (;;) {
        struct answer answer;
        if (call("GET", container(""), NULL, NULL, 0, &answer) == ANSWERED) {
            if (answer.status >= 400)
                api_error(&answer);
            json_object_put(answer.body);
            return;
        }
        if (now() > deadline) {
            char message[PATH_MAX + 512];
            snprintf(message, sizeof message, "ctrd at %s did not come back within %gs; "
                     "container %s may still run", socket_path, RECONNECT_TIMEOUT, name);
            fail(message);
        }
        struct timespec poll_time = {0, (long)(RECONNECT_POLL * 1e9)};
        nanosleep(&poll_time, NULL);
    }
}

/* -- signals: to PID 1 through ctrd ---------------------------------------------------------- */

static int held[NSIGNALS + 1], nheld; /* signals ctrd could not be told yet, and SIGKILL */
static int killing, kill_timer = -1;

static void forward(int signum) {
    json_object *body = json_object_new_object();
    json_object_object_add(body, "signal", json_object_new_int(signum));
    struct answer answer;
    enum outcome outcome = call("POST", container("kill"), body, NULL, 0, &answer);
    json_object_put(body);
    if (outcome != ANSWERED) {
        for (int i = 0; i < nheld; i++)
            if (held[i] == signum)
                return;
        held[nheld++] = signum; /* again once ctrd is back */
        return;
    }
    json_object_put(answer.body);
    if (answer.status >= 400)
        return; /* it has just ended */
    if ((signum == SIGTERM || signum == SIGINT) && !killing) {
        /* SIGKILL to PID 1 --stop-timeout later, as alone: a command as PID 1 ignores signals
         * it has no handler for */
        killing = 1;
        struct itimerspec later = {.it_value = {(time_t)DEFAULT_STOP_TIMEOUT,
            (long)((DEFAULT_STOP_TIMEOUT - (time_t)DEFAULT_STOP_TIMEOUT) * 1e9)}};
        timerfd_settime(kill_timer, 0, &later, NULL);
    }
}

static void flush_held(void) {
    int pending[NSIGNALS + 1], count = nheld;
    memcpy(pending, held, sizeof pending);
    nheld = 0;
    for (int i = 0; i < count; i++)
        forward(pending[i]);
}

static void take_signals(int signals) {
    struct signalfd_siginfo info;
    while (read(signals, &info, sizeof info) == sizeof info)
        forward((int)info.ssi_signo);
}

/* -- the run ---------------------------------------------------------------------------------- */

/* The container's exit status, once ctrd says it has ended. */
static int wait_for_end(int signals) {
    for (;;) {
        enum outcome outcome;
        int sock = send_request("POST", container("wait"), NULL, NULL, 0, &outcome);
        struct answer answer;
        if (sock >= 0) {
            struct pollfd watched[] = {{sock, POLLIN, 0}, {signals, POLLIN, 0},
                                       {kill_timer, POLLIN, 0}};
            for (;;) {
                if (poll(watched, 3, -1) < 0 && errno != EINTR)
                    fail(strerror(errno));
                if (watched[1].revents)
                    take_signals(signals);
                if (watched[2].revents) {
                    unsigned long long expired;
                    if (read(kill_timer, &expired, sizeof expired) == sizeof expired)
                        forward(SIGKILL);
                }
                if (watched[0].revents)
                    break;
            }
            outcome = read_answer(sock, &answer);
        }
        if (outcome != ANSWERED) {
            until_back();
            flush_held();
            continue;
        }
        if (answer.status == 503) { /* ctrd is stopping */
            json_object_put(answer.body);
            until_back();
            continue;
        }
        if (answer.status >= 400)
            api_error(&answer);
        json_object *code = NULL;
        if (!json_object_object_get_ex(answer.body, "exit_code", &code) ||
            !json_object_is_type(code, json_type_int)) {
            const char *reason = field_text(answer.body, "reason");
            char message[1024];
            snprintf(message, sizeof message, "container %s ended with no exit status: %s",
                     name, reason && *reason ? reason : field_text(answer.body, "state"));
            fail(message);
        }
        int status = json_object_get_int(code);
        json_object_put(answer.body);
        return status;
    }
}

/* The instance is ctrctl's: gone with the run. */
static void remove_instance(void) {
    for (;;) {
        struct answer answer;
        if (call("DELETE", container(""), NULL, NULL, 0, &answer) != ANSWERED) {
            until_back();
            continue;
        }
        if (answer.status >= 400)
            api_error(&answer);
        json_object_put(answer.body);
        return;
    }
}

int main(int argc, char **argv) {
    all_args = argv;
    sigset_t forwarded;
    sigemptyset(&forwarded);
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaddset(&forwarded, FORWARDED_SIGNALS[i]);
    /* held from the start, as Python's handlers hold them until the run is ctrd's */
    sigprocmask(SIG_BLOCK, &forwarded, &original_mask);
    json_object *given = read_run(argc, argv, read_globals(argc, argv));

    int null = open("/dev/null", O_RDONLY | O_CLOEXEC); /* without -i, the container's stdin */
    int signals = signalfd(-1, &forwarded, SFD_NONBLOCK | SFD_CLOEXEC);
    kill_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (null < 0 || signals < 0 || kill_timer < 0)
        fallback();
    int stdio[3] = {interactive ? 0 : null, 1, 2};
    struct answer answer;
    enum outcome outcome = call("POST", "/v1/containers/run", given, stdio, 3, &answer);
    if (outcome == ABSENT || outcome == UNREACHABLE)
        fallback(); /* no ctrd (Python starts the container itself), or Python's words for it */
    close(null);
    if (outcome == LOST) {
        until_back(); /* the next ctrd knows whether the container was made */
    } else if (answer.status >= 400) {
        json_object *detail = NULL, *key = NULL;
        if (answer.status == 400 && answer.body &&
            json_object_object_get_ex(answer.body, "detail", &detail) &&
            json_object_object_get_ex(detail, "key", &key) && *json_object_get_string(key))
            fallback(); /* refused before anything was made: Python's usage error */
        api_error(&answer);
    } else {
        json_object_put(answer.body);
    }
    json_object_put(given);
    take_signals(signals);
    int status = wait_for_end(signals);
    remove_instance();
    return status;
}
