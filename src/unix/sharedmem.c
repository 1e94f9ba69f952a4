/* Memory another process can map: memfds, and opening another process's
 * descriptor through /proc (see platform.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unix/platform.h"

int
conc__memfd_new(size_t size)
{
    int fd = memfd_create("conc-arena", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int
conc__open_fd_of(int pid, int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
    int r = open(path, O_RDWR | O_CLOEXEC);
    return r < 0 ? -errno : r;
}
