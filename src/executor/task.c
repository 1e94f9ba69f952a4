/* The calling task's context: its cancel token and descriptor. Executors
 * set it around each task they run in a thread of this process. */
#include <unistd.h>

#include "conc/task.h"
#include "executor/executor_internal.h"

static _Thread_local struct conc__task_ctx *current;

void
conc__task_enter(struct conc__task_ctx *ctx)
{
    current = ctx;
}

void
conc__task_leave(void)
{
    struct conc__task_ctx *ctx = current;
    current = NULL;
    if (ctx && ctx->fd >= 0) {
        close(ctx->fd);
        ctx->fd = -1;
    }
}

int
conc_task_cancelled(void)
{
    struct conc__task_ctx *ctx = current;
    return ctx && ctx->cancel &&
           atomic_load_explicit(ctx->cancel, memory_order_relaxed) != 0;
}

int
conc_task_fd(void)
{
    return current ? current->fd : -1;
}

int
conc_task_take_fd(void)
{
    if (!current)
        return -1;
    int fd = current->fd;
    current->fd = -1;
    return fd;
}
