/* The redis-server fixture of the scale-out tests (redis_fixture.h).
 *
 * Redis refuses port 0, so a free port is found by binding port 0 and
 * releasing it; another program may take it meanwhile, so a server that
 * exits before it accepts connections is started again on a new port, a
 * few times. Readiness has no event to wait on: the fixture asks the
 * server for a PONG, with a retry cap (a server loading its append-only
 * file answers LOADING until it is done). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc.h"
#include "redis_fixture.h"

/* Attempts at a free port, and how long a server may take to listen. */
#define PORT_ATTEMPTS   5
#define READY_TIMEOUT_S 20.0

const char *
redis_fixture_program(void)
{
    static const char *paths[] = {"/usr/bin/redis-server",
                                  "/usr/local/bin/redis-server"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

pid_t
redis_fixture_spawn(char *const argv[])
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Dies with the test, whatever happens to it: no process outlives
         * a crashed test program. Only async-signal-safe calls here. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Whether the server answers PING (after AUTH) with PONG: it listens and
 * has loaded its data (until then it answers LOADING). */
static int
ready(const struct redis_fixture *r)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)r->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char cmd[128], reply[256];
    snprintf(cmd, sizeof cmd, "%s%s%sPING\r\n", r->password ? "AUTH " : "",
             r->password ? r->password : "", r->password ? "\r\n" : "");
    int ok = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        size_t got = 0;
        /* Both replies, or at most a second. */
        while (got < sizeof reply - 1 && poll(&p, 1, 1000) == 1) {
            ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            reply[got] = '\0';
            if (strstr(reply, "PONG") || strstr(reply, "LOADING") ||
                strstr(reply, "-ERR"))
                break;
        }
        reply[got] = '\0';
        ok = strstr(reply, "+PONG") != NULL;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts redis-server on r->port; 0 once it accepts, -1 if it exited. */
static int
launch(struct redis_fixture *r)
{
    char port[16], dir[80], log[96];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(dir, sizeof dir, "%s", r->dir);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)redis_fixture_program();
    char *fixed[] = {"--port",
                     port,
                     "--bind",
                     "127.0.0.1",
                     "--dir",
                     dir,
                     "--appendonly",
                     "yes",
                     "--appendfsync",
                     (char *)r->fsync,
                     "--save",
                     "",
                     "--logfile",
                     log,
                     "--daemonize",
                     "no",
                     "--protected-mode",
                     "no"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[n++] = fixed[i];
    if (r->password) {
        argv[n++] = "--requirepass";
        argv[n++] = (char *)r->password;
    }
    argv[n] = NULL;
    if ((r->pid = redis_fixture_spawn(argv)) < 0) {
        r->pid = 0;
        return -1;
    }
    double end = conc_monotonic() + READY_TIMEOUT_S;
    while (conc_monotonic() < end) {
        if (ready(r))
            return 0;
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1; /* the port was taken meanwhile, most likely */
        }
        conc_sleep(0.01);
    }
    redis_fixture_kill(r);
    return -1;
}

int
redis_fixture_start(struct redis_fixture *r, const char *password,
                    const char *fsync)
{
    memset(r, 0, sizeof *r);
    if (!redis_fixture_program())
        return -1;
    snprintf(r->dir, sizeof r->dir, "/tmp/conc-redis-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    r->password = password;
    r->fsync = fsync ? fsync : "always";
    for (int i = 0; i < PORT_ATTEMPTS; i++) {
        if ((r->port = free_port()) < 0)
            break;
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
        if (launch(r) == 0)
            return 0;
    }
    fprintf(stderr, "redis fixture: no server started (see %s)\n", r->dir);
    return -1;
}

void
redis_fixture_kill(struct redis_fixture *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    r->pid = 0;
}

int
redis_fixture_restart(struct redis_fixture *r)
{
    redis_fixture_kill(r);
    return launch(r);
}

void
redis_fixture_stop(struct redis_fixture *r)
{
    redis_fixture_kill(r);
    if (r->dir[0]) {
        char *argv[] = {"/bin/rm", "-rf", r->dir, NULL};
        pid_t pid = redis_fixture_spawn(argv);
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    r->dir[0] = '\0';
}
