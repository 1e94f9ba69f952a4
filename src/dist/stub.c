/* Scale-out where the build found no hiredis: every conc_dist_* call keeps
 * its contract for bad arguments and otherwise returns -ENOSYS, so the API
 * is whole and a program learns at run time what is missing. CMake builds
 * this file instead of the others of src/dist. */
#include <errno.h>

#include "conc/dist.h"

int
conc_dist_executor_new(const char *address, const char *password,
                       const char *queue, const conc_dist_opts *opts,
                       conc_dist_executor **out)
{
    (void)password;
    (void)opts;
    return !address || !queue || !out ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_submit(conc_dist_executor *dx, const char *name, const void *arg,
                 size_t len, double timeout, conc_future **out)
{
    (void)arg;
    (void)len;
    (void)timeout;
    return !dx || !name || !out ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_submit_many(conc_dist_executor *dx, const char *name,
                      const conc_items *items, double timeout,
                      conc_future **out, size_t *submitted)
{
    (void)timeout;
    return !dx || !name || !items || !out || !submitted ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_map(conc_dist_executor *dx, const char *name, const conc_items *items,
              const conc_map_opts *opts, conc_map_iter **out)
{
    (void)opts;
    return !dx || !name || !items || !out ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_shutdown(conc_dist_executor *dx, int wait, int cancel_futures,
                   double timeout)
{
    (void)wait;
    (void)cancel_futures;
    (void)timeout;
    return !dx ? CONC_EINVAL : -ENOSYS;
}

void
conc_dist_executor_free(conc_dist_executor *dx)
{
    (void)dx;
}

int
conc_dist_register(const char *name, conc_task_fn fn)
{
    return !name || !fn ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_worker_new(const char *address, const char *password,
                     const char *queue, const conc_dist_worker_opts *opts,
                     conc_dist_worker **out)
{
    (void)password;
    (void)opts;
    return !address || !queue || !out ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_worker_run(conc_dist_worker *w, double timeout)
{
    (void)timeout;
    return !w ? CONC_EINVAL : -ENOSYS;
}

int
conc_dist_worker_stop(conc_dist_worker *w)
{
    return !w ? CONC_EINVAL : -ENOSYS;
}

void
conc_dist_worker_free(conc_dist_worker *w)
{
    (void)w;
}

int
conc_dist_status_get(const char *address, const char *password,
                     const char *queue, double timeout, conc_dist_status *out)
{
    (void)password;
    (void)timeout;
    return !address || !queue || !out ? CONC_EINVAL : -ENOSYS;
}
