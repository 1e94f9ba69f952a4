/* Unlinking, at normal exit, the named segments a process created and did
 * not unlink: the job of Python's resource tracker.
 *
 * Design. Python runs a tracker process, so that segments are removed even
 * when the program is killed. conc keeps a list in the creating process
 * and removes what is left at exit, in the last stage of conc's exit
 * sequence (core/internal.h), once non-daemon threads and children have
 * been joined, as Python's tracker does once its program has ended. No
 * extra process, no descriptor, nothing to start; the price is that a
 * process killed by a signal (or ending with _exit) leaves its segments,
 * which the header says.
 *
 * Each entry records the creator's pid: a forked child inherits a copy of
 * the list and the exit stage, and must not remove its parent's segments
 * when it exits. Each entry also records the segment's device and inode:
 * if some process unlinked the name and a new segment took it, the stage
 * finds a different inode and leaves the newcomer alone.
 *
 * Lock order: the list's mutex is a leaf. pthread_atfork takes it around
 * fork, so that a child never inherits it held by a thread that does not
 * exist there. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/shm_internal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conc__shm_tracked *tracked; /* guarded by lock */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Whether `path` still names the segment with this device and inode. */
static int
same_segment(const struct conc__shm_tracked *t)
{
    int fd = shm_open(t->path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct stat st;
    int same =
        fstat(fd, &st) == 0 && st.st_dev == t->dev && st.st_ino == t->ino;
    close(fd);
    return same;
}

static void
unlink_at_exit(void)
{
    pthread_mutex_lock(&lock);
    pid_t me = getpid();
    struct conc__shm_tracked *t = tracked;
    tracked = NULL;
    while (t) {
        struct conc__shm_tracked *next = t->next;
        if (t->pid == me && same_segment(t))
            shm_unlink(t->path);
        conc__free(t);
        t = next;
    }
    pthread_mutex_unlock(&lock);
}

static void
before_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void
after_fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void
after_fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}

static void
install(void)
{
    /* Neither can fail short of memory exhaustion at start-up, and then
     * the cost is only that segments outlive the program. */
    conc__at_exit(CONC__EXIT_SHM, unlink_at_exit);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

struct conc__shm_tracked *
conc__shm_track_alloc(void)
{
    pthread_once(&once, install);
    return conc__calloc(1, sizeof(struct conc__shm_tracked));
}

void
conc__shm_track(struct conc__shm_tracked *t, const char *path, dev_t dev,
                ino_t ino)
{
    t->pid = getpid();
    t->dev = dev;
    t->ino = ino;
    strncpy(t->path, path, sizeof t->path - 1);
    pthread_mutex_lock(&lock);
    t->next = tracked;
    tracked = t;
    pthread_mutex_unlock(&lock);
}

void
conc__shm_untrack(const char *path)
{
    pid_t me = getpid();
    pthread_mutex_lock(&lock);
    for (struct conc__shm_tracked **p = &tracked; *p; p = &(*p)->next) {
        struct conc__shm_tracked *t = *p;
        if (t->pid == me && strcmp(t->path, path) == 0) {
            *p = t->next;
            conc__free(t);
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}
