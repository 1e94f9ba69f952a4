/* The examples' shared plumbing: see example_util.h. */
#define _POSIX_C_SOURCE 200809L /* the socket calls */

#include "example_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

void
check(int rc, const char *what)
{
    if (rc == 0)
        return;
    fflush(stdout);
    const char *msg = conc_failure_message();
    fprintf(stderr, "%s: %s: %s\n", what, conc_err_name(rc),
            *msg ? msg : conc_strerror(rc));
    _Exit(EXIT_FAILURE);
}

int
sys(int rc)
{
    return rc < 0 ? -errno : 0;
}

int
send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
recv_to_end(int fd, conc_buf *out)
{
    for (;;) {
        int rc = conc_buf_reserve(out, 4096);
        if (rc != 0)
            return rc;
        ssize_t n = recv(fd, out->data + out->len, out->cap - out->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        out->len += (size_t)n;
    }
}
