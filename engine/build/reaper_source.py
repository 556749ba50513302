"""The reaper's C source (see ``engine.build.reaper`` for why it exists and how it is built).

Two modes. ``reaper CONTROL_FD PROGRAM ARGV0 [ARG...]`` runs one program (a case, a REPL
submission), as the reaper always did. ``reaper --serve SERVICE_FD`` is one reaper for a whole
build: on its service socket (``SOCK_SEQPACKET``, one request per message) it receives, for each
action, the action's working folder, umask, program, argv and environment as NUL-ended strings,
and two descriptors (``SCM_RIGHTS``): where the program's stdout and stderr go, and the action's
own control socket. For each it forks a *job*, a copy of itself that does for that one action
what the one-program mode does (a subreaper of its own, so that what the action leaves is the
job's and no other action's), and reports on the action's control socket. Forking the small
static server costs less than starting a reaper per action (recipe's fork and exec of it, and
its exec) and recipe makes no process per action. The server is a subreaper too: what a job
killed from outside leaves comes to it. When the service socket reaches EOF (recipe closed it,
or died) or on SIGTERM, SIGINT or SIGHUP, it SIGKILLs every job and everything left, reaps
them all and exits; a job dies with the server (its parent-death signal is SIGTERM, which makes
it clean up as a stop would).
"""

SOURCE = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int ctl = -1;

static void report(const char *kind, int value) {
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d\n", kind, value);
    /* Never block or die on it: recipe may be gone, or not reading. */
    if (send(ctl, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { /* nobody to tell */ }
}

/* No descriptor but 0, 1 and 2 may reach the program (the control socket, our own memfd). */
static void cloexec_all(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) { for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC); return; }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(dir)) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(dir);
}

/* SIGKILL every child of ours; orphaned descendants are our children (we are a subreaper). */
static void kill_children(void) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        long pid = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] >= '0' && buf[i] <= '9') { pid = pid * 10 + (buf[i] - '0'); continue; }
                if (pid > 0) kill((pid_t)pid, SIGKILL);
                pid = 0;
            }
        if (pid > 0) kill((pid_t)pid, SIGKILL);
        close(fd);
        return;
    }
    DIR *dir = opendir("/proc");  /* kernels without CONFIG_PROC_CHILDREN: scan every process */
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        int sfd = open(path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0) continue;
        ssize_t n = read(sfd, buf, sizeof buf - 1);
        close(sfd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *end = strrchr(buf, ')');
        int ppid = 0;
        if (end && sscanf(end + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) kill(pid, SIGKILL);
    }
    closedir(dir);
}

/* Kill, then reap one; killed processes' children come to us: repeat until none is left. */
static int reap_all(pid_t child, int status) {
    for (;;) {
        kill_children();
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) { if (errno == EINTR) continue; break; }  /* ECHILD: all gone */
        if (pid == child) status = st;
    }
    return status;
}

/* Run PATH with ARGV (ENVP, CWD, MASK and OUT when given: a job's) to its end, then kill and
   reap everything it left; report on ctl. ``restore`` is the signal mask the program gets. */
static int contain(const char *path, char **argv, char **envp, const char *cwd, int mask,
                   int out, const sigset_t *restore) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD); sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT); sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    pid_t parent = getpid();
    int errp[2];
    if (sfd < 0 || pipe2(errp, O_CLOEXEC) < 0) { report("error", errno); return 0; }
    pid_t child = fork();
    if (child < 0) { report("error", errno); return 0; }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, restore, NULL);
        /* Dies with us (we are single-threaded, so "us" is this process); if we died before
           this line, the parent is another process already. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        setpgid(0, 0);  /* its own group: a `kill 0` in the program spares us */
        int e = 0;
        if (out >= 0) {  /* a job's program: stdin closed, stdout and stderr to recipe's pipe */
            int null = open("/dev/null", O_RDONLY);
            if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) e = errno;
        }
        if (!e && cwd && chdir(cwd) < 0) e = errno;
        if (!e) {
            if (mask >= 0) umask((mode_t)mask);
            if (envp) execve(path, argv, envp); else execv(path, argv);
            e = errno;
        }
        if (write(errp[1], &e, sizeof e) < 0) { /* nothing to do */ }
        _exit(127);
    }
    close(errp[1]);
    if (out >= 0) close(out);  /* the pipe's EOF must come when the program's side is gone */
    int e = 0;
    ssize_t n;
    while ((n = read(errp[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(errp[0]);
    /* The streams are the program's: drop our copies so that nothing waits on us. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++) { if (null >= 0) dup2(null, fd); else close(fd); }

    int status = 0, done = 0, stop = 0;
    if (n == (ssize_t)sizeof e) { waitpid(child, &status, 0); report("error", e); return 0; }
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {ctl, POLLIN, 0}};
    while (!done && !stop) {
        if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; stop = 1; break; }
        if (fds[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                if (si.ssi_signo != SIGCHLD) stop = 1;
            pid_t pid;
            int st;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                if (pid == child) { status = st; done = 1; }
        }
        if (fds[1].revents) stop = 1;  /* recipe gone (EOF) or asking */
    }
    status = reap_all(child, status);
    if (WIFSIGNALED(status)) report("signal", WTERMSIG(status));
    else report("exit", WEXITSTATUS(status));
    return 0;
}

/* A job: the request's strings are cwd, umask (octal), program, argc, argv..., envc, env... */
static int job(char *req, size_t len, int out, const sigset_t *restore) {
    char *end = req + len, *p = req;
    char *field[3];
    for (int i = 0; i < 3; i++) { if (p >= end) return 125; field[i] = p; p += strlen(p) + 1; }
    char **lists[2];
    for (int l = 0; l < 2; l++) {
        if (p >= end) return 125;
        long count = strtol(p, NULL, 10);
        p += strlen(p) + 1;
        if (count < 0 || count > 1 << 20) return 125;
        lists[l] = calloc((size_t)count + 1, sizeof(char *));
        if (!lists[l]) return 125;
        for (long i = 0; i < count; i++) {
            if (p >= end) return 125;
            lists[l][i] = p;
            p += strlen(p) + 1;
        }
    }
    return contain(field[2], lists[0], lists[1], field[0], (int)strtol(field[1], NULL, 8), out,
                   restore);
}

static int serve(int svc) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t set, orig;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD); sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT); sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &orig);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) return 1;
    static char buf[1 << 18];
    pid_t server = getpid();
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {svc, POLLIN, 0}};
    int stop = 0;
    while (!stop) {
        if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; break; }
        if (fds[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                if (si.ssi_signo != SIGCHLD) stop = 1;
            int st;
            while (waitpid(-1, &st, WNOHANG) > 0) {}  /* ended jobs (and strays: reaped) */
        }
        if (stop || !fds[1].revents) continue;
        union { char space[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr align; } control;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr msg = {0};
        msg.msg_iov = &iov; msg.msg_iovlen = 1;
        msg.msg_control = control.space; msg.msg_controllen = sizeof control.space;
        ssize_t n = recvmsg(svc, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; break; }
        if (n == 0) break;  /* recipe closed the service, or died */
        int got[2] = {-1, -1};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
                && c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
            memcpy(got, CMSG_DATA(c), sizeof got);
        if (got[0] < 0 || got[1] < 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            if (got[0] >= 0) close(got[0]);
            if (got[1] >= 0) { ctl = got[1]; report("error", E2BIG); close(got[1]); }
            continue;
        }
        buf[n] = 0;
        pid_t pid = fork();
        if (pid == 0) {
            /* Cleans up as a stop would when the server dies, however it dies. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != server) _exit(0);
            close(svc); close(sfd);
            ctl = got[1];
            _exit(job(buf, (size_t)n, got[0], &orig));
        }
        if (pid < 0) { ctl = got[1]; report("error", errno); }
        close(got[0]); close(got[1]);
    }
    reap_all(-1, 0);  /* every job, and everything any of them left */
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--serve") == 0) {
        int svc = atoi(argv[2]);
        cloexec_all();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; fd++) { if (null >= 0) dup2(null, fd); else close(fd); }
        return serve(svc);
    }
    if (argc < 4) return 125;
    ctl = atoi(argv[1]);
    cloexec_all();
    sigset_t old;
    sigprocmask(SIG_BLOCK, NULL, &old);
    return contain(argv[2], argv + 3, NULL, NULL, -1, -1, &old);
}
"""
