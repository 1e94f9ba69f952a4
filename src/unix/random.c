/* Random bytes from the kernel (getrandom), for keys such as the seed of
 * str hashing in src/obj/dict.c. */
#include <errno.h>
#include <sys/random.h>

#include "unix/platform.h"

int
conc__random_bytes(void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = getrandom((char *)buf + done, n - done, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)k;
    }
    return 0;
}
