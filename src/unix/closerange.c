/* Closing every descriptor of a range, for a child about to run code that
 * must not inherit the parent's descriptors. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conc_config.h"
#include "unix/platform.h"

/* Kernels before 5.9: close what /proc lists. */
static void
close_listed(unsigned lo, unsigned hi)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        unsigned long fd = strtoul(e->d_name, NULL, 10);
        if (fd >= lo && fd <= hi && (int)fd != dirfd(d))
            close((int)fd);
    }
    closedir(d);
}

void
conc__close_range(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
#ifdef HAVE_SYS_CLOSE_RANGE
    if (syscall(SYS_close_range, lo, hi, 0u) == 0)
        return;
#endif
    close_listed(lo, hi);
}
