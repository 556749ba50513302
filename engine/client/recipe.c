/* recipe's native client: runs a command in this user's `recipe server` without starting
 * Python, or, when it cannot, execs the Python command itself, so nothing differs but the time.
 *
 * Compiled by `recipe server start` (engine/client/__init__.py) for one server identity, which
 * is baked in with -D:
 *   RECIPE_ADDRESS   the socket's name in the abstract namespace (without its leading NUL)
 *   RECIPE_IDENTITY  the server's identity (engine.server.IDENTITY)
 *   RECIPE_PYTHON    the Python that runs recipe, exec'd as `PYTHON -P -m engine.cli.main ARGS`
 *   RECIPE_LOCALE    {"NAME", "VALUE" or 0}, ...: the variables of the identity, as baked
 *   RECIPE_OFF       {"COMMAND"}, ...: commands never served (`server`, `repl`)
 * The message is engine.server.encode's: a 4-byte little-endian length of the rest, a 4-byte
 * count of fields, each field a 4-byte length and its bytes: identity, "run", umask, count of
 * arguments, the arguments, NAME=VALUE of each variable. With it go descriptors 0, 1, 2 and the
 * working folder (SCM_RIGHTS). The server answers "A" (a child took it; we say "G") or "R"
 * (refused: nothing was done), then the exit code in 4 bytes. ^C, SIGTERM and SIGHUP are sent
 * on as "I", "T", "H". Anything that goes wrong before "G" is said: the Python command. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

static const char *const locale_vars[][2] = {RECIPE_LOCALE};
static const char *const unserved[] = {RECIPE_OFF};

static int sock = -1;
static volatile sig_atomic_t relayed;

static void fallback(char **argv) __attribute__((noreturn));
static void fallback(char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    char **full = calloc((size_t)argc + 4, sizeof *full);
    if (full == NULL) _exit(1);
    if (sock >= 0) close(sock);
    full[0] = RECIPE_PYTHON;
    full[1] = "-P";
    full[2] = "-m";
    full[3] = "engine.cli.main";
    for (int i = 1; i < argc; i++) full[3 + i] = argv[i];
    execv(RECIPE_PYTHON, full);
    fprintf(stderr, "recipe: cannot run %s: %s; run 'recipe server start' again from the "
            "installed recipe\n", RECIPE_PYTHON, strerror(errno));
    _exit(127);
}

struct buffer { char *data; size_t size, cap; };

static int append(struct buffer *b, const void *data, size_t size) {
    if (b->size + size > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->size + size) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->size, data, size);
    b->size += size;
    return 0;
}

static int u32(struct buffer *b, uint32_t value) {
    unsigned char le[4] = {value, value >> 8, value >> 16, value >> 24};
    return append(b, le, 4);
}

static int field(struct buffer *b, const char *data, size_t size) {
    return u32(b, (uint32_t)size) || append(b, data, size);
}

static int text(struct buffer *b, const char *s) { return field(b, s, strlen(s)); }

static void relay(int signum) {
    char word = signum == SIGINT ? 'I' : signum == SIGTERM ? 'T' : 'H';
    int saved = errno;
    relayed = signum;
    (void)send(sock, &word, 1, MSG_NOSIGNAL);
    errno = saved;
}

/* Read exactly size bytes; -1 on EOF or error (EINTR from a relayed signal goes on). */
static int read_all(void *data, size_t size, int timeout_ms) {
    size_t got = 0;
    while (got < size) {
        if (timeout_ms >= 0) {
            struct pollfd p = {sock, POLLIN, 0};
            int ready = poll(&p, 1, timeout_ms);
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) return -1;
        }
        ssize_t n = recv(sock, (char *)data + got, size - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *off = getenv("RECIPE_SERVER");
    if (off != NULL && strcmp(off, "off") == 0) fallback(argv);
    if (argc > 1)
        for (size_t i = 0; i < sizeof unserved / sizeof *unserved; i++)
            if (strcmp(argv[1], unserved[i]) == 0) fallback(argv);
    /* Python of another locale is another identity: its own server, or none. */
    for (size_t i = 0; i < sizeof locale_vars / sizeof *locale_vars; i++) {
        const char *now = getenv(locale_vars[i][0]), *baked = locale_vars[i][1];
        if ((now == NULL) != (baked == NULL) || (now && strcmp(now, baked) != 0))
            fallback(argv);
    }
    for (int fd = 0; fd <= 2; fd++)  /* a closed standard stream: in-process, as Python does */
        if (fcntl(fd, F_GETFD) < 0) fallback(argv);

    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) fallback(argv);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    static const char name[] = RECIPE_ADDRESS;
    if (sizeof name > sizeof addr.sun_path) fallback(argv);
    memcpy(addr.sun_path + 1, name, sizeof name - 1);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof name);
    if (connect(sock, (struct sockaddr *)&addr, len) < 0) fallback(argv);
    struct ucred cred;
    socklen_t credlen = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0 ||
        cred.uid != getuid())  /* somebody else's socket under our name: never talk to it */
        fallback(argv);
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0) fallback(argv);

    mode_t mask = umask(022);
    umask(mask);
    char number[32];
    struct buffer body = {0};
    int fail = u32(&body, 0);
    uint32_t fields = 4;
    static const char identity[] = RECIPE_IDENTITY;
    fail |= field(&body, identity, sizeof identity - 1) || text(&body, "run");
    snprintf(number, sizeof number, "%u", (unsigned)mask);
    fail |= text(&body, number);
    snprintf(number, sizeof number, "%d", argc - 1);
    fail |= text(&body, number);
    for (int i = 1; i < argc; i++, fields++) fail |= text(&body, argv[i]);
    for (char **e = environ; *e; e++, fields++) fail |= text(&body, *e);
    struct buffer message = {0};
    fail |= u32(&message, (uint32_t)body.size) || append(&message, body.data, body.size);
    if (fail) fallback(argv);
    unsigned char *count = (unsigned char *)message.data + 4;
    count[0] = fields; count[1] = fields >> 8; count[2] = fields >> 16; count[3] = fields >> 24;

    int fds[4] = {0, 1, 2, cwd};
    union { char buf[CMSG_SPACE(sizeof fds)]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {message.data, message.size};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    ssize_t sent;
    do sent = sendmsg(sock, &msg, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    if (sent < 0) fallback(argv);
    for (size_t at = (size_t)sent; at < message.size; at += (size_t)sent) {
        do sent = send(sock, message.data + at, message.size - at, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        if (sent <= 0) fallback(argv);
    }
    close(cwd);

    char answer;
    if (read_all(&answer, 1, 10000) < 0 || answer != 'A') fallback(argv);
    do sent = send(sock, "G", 1, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
    if (sent != 1) fallback(argv);  /* the child never runs a command without "G" */
    /* From "G" on the command is the server's: ^C, SIGTERM, SIGHUP go to it (one that comes
     * before this, the default: this process ends, and its end is a ^C to the child). */
    struct sigaction act = {.sa_handler = relay};
    sigemptyset(&act.sa_mask);
    int taken[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        struct sigaction old;
        sigaction(taken[i], NULL, &old);
        if (old.sa_handler != SIG_IGN) sigaction(taken[i], &act, NULL);  /* nohup stays */
    }
    unsigned char code[4];
    if (read_all(code, 4, -1) < 0) {
        if (relayed) {  /* the signal ended the command: end the same way */
            signal(relayed, SIG_DFL);
            raise(relayed);
        }
        fprintf(stderr, "recipe: the recipe server ended the command without an exit code; "
                "run it again; 'recipe server stop' runs commands in-process\n");
        return 1;
    }
    return (int)((uint32_t)code[0] | (uint32_t)code[1] << 8 | (uint32_t)code[2] << 16 |
                 (uint32_t)code[3] << 24);
}
