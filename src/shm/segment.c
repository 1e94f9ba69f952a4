/* Named shared memory segments (multiprocessing.shared_memory).
 *
 * A segment is a POSIX shared memory object: shm_open creates a file in
 * /dev/shm (mode 0600, close-on-exec), ftruncate sizes it (tmpfs fills it
 * with zeros), and mmap maps all of it. The descriptor is closed as soon as
 * the mapping exists: the mapping keeps the memory, and the name keeps the
 * segment for processes that attach later. A handle is the mapping, its
 * size and its name; it is private to the process that made it.
 *
 * Segments this process creates are recorded (tracker.c) and unlinked at
 * exit unless unlinked before. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/shm_internal.h"

/* Tries for a generated name before giving up (each collision has a
 * chance of 2^-64). */
#define NAME_TRIES 16

struct conc_shm {
    void *buf;               /* NULL once closed */
    size_t size;             /* the whole segment */
    char path[NAME_MAX + 2]; /* "/name": shm_open's form */
};

/* Copies `name` to `path` as "/name". Returns 0 or CONC_EINVAL. */
static int
set_path(char *path, const char *name)
{
    if (name[0] == '/')
        name++;
    size_t len = strnlen(name, NAME_MAX + 1);
    if (len == 0 || len > NAME_MAX || memchr(name, '/', len) ||
        strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return CONC_EINVAL;
    path[0] = '/';
    memcpy(path + 1, name, len + 1);
    return 0;
}

/* "/conc_" and 16 random hex digits. */
static void
generate_path(char *path)
{
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* No entropy yet (early boot): time and pid still differ between
         * callers, and a clash only costs another try. */
        static _Atomic uint64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
            ((uint64_t)getpid() << 20) ^ atomic_fetch_add(&counter, 1);
    }
    snprintf(path, NAME_MAX + 2, "/conc_%016llx", (unsigned long long)r);
}

/* Creates the object at s->path, or at generated names until one is free
 * when `generated`. Returns the descriptor or a negated errno. */
static int
open_new(conc_shm *s, int generated)
{
    for (int i = 0; i < NAME_TRIES; i++) {
        if (generated)
            generate_path(s->path);
        int fd = shm_open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST || !generated)
            return fd >= 0 ? fd : -errno;
    }
    return CONC_EEXIST;
}

static int
size_fd(int fd, size_t size)
{
    int r;
    do
        r = ftruncate(fd, (off_t)size);
    while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : -errno;
}

static int
map_fd(conc_shm *s, int fd)
{
    void *m = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    s->buf = m;
    return 0;
}

/* Sizes and maps the new segment behind `fd`, and records it for exit.
 * On failure the caller removes it. */
static int
finish_create(conc_shm *s, int fd, struct conc__shm_tracked *t)
{
    struct stat st;
    int e = size_fd(fd, s->size);
    if (!e && fstat(fd, &st) != 0)
        e = -errno;
    if (!e)
        e = map_fd(s, fd);
    if (!e)
        conc__shm_track(t, s->path, st.st_dev, st.st_ino);
    return e;
}

int
conc_shm_create(const char *name, size_t size, conc_shm **out)
{
    if (!out)
        return CONC_EINVAL;
    struct conc__shm_tracked *t;
    int e, fd;
    if (size == 0 || size > (size_t)INT64_MAX)
        return CONC_EINVAL;
    conc_shm *s = conc__calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    e = name ? set_path(s->path, name) : 0;
    if (e)
        goto fail1;
    s->size = size;
    t = conc__shm_track_alloc();
    if (!t) {
        e = CONC_ENOMEM;
        goto fail1;
    }
    fd = open_new(s, name == NULL);
    if (fd < 0) {
        e = fd;
        goto fail2;
    }
    e = finish_create(s, fd, t);
    close(fd);
    if (e) {
        shm_unlink(s->path);
        goto fail2;
    }
    *out = s;
    return 0;
fail2:
    conc__free(t);
fail1:
    conc__free(s);
    return e;
}

/* Maps the existing segment behind `fd`, all of it. */
static int
attach_fd(conc_shm *s, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (st.st_size <= 0)
        return CONC_EINVAL;
    s->size = (size_t)st.st_size;
    return map_fd(s, fd);
}

int
conc_shm_attach(const char *name, conc_shm **out)
{
    int e, fd;
    if (!name || !out)
        return CONC_EINVAL;
    conc_shm *s = conc__calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    e = set_path(s->path, name);
    if (e)
        goto fail;
    fd = shm_open(s->path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        e = -errno;
        goto fail;
    }
    e = attach_fd(s, fd);
    close(fd);
    if (e)
        goto fail;
    *out = s;
    return 0;
fail:
    conc__free(s);
    return e;
}

void *
conc_shm_buf(conc_shm *s)
{
    if (!s)
        return NULL;
    return s->buf;
}

size_t
conc_shm_size(const conc_shm *s)
{
    if (!s)
        return 0;
    return s->size;
}

const char *
conc_shm_name(const conc_shm *s)
{
    if (!s)
        return NULL;
    return s->path + 1;
}

void
conc_shm_close(conc_shm *s)
{
    if (!s)
        return;
    if (s->buf) {
        munmap(s->buf, s->size);
        s->buf = NULL;
    }
}

int
conc_shm_unlink(conc_shm *s)
{
    if (!s)
        return CONC_EINVAL;
    int r = shm_unlink(s->path);
    int e = r == 0 ? 0 : -errno;
    if (r == 0 || e == CONC_ENOENT)
        conc__shm_untrack(s->path);
    return e;
}

void
conc_shm_free(conc_shm *s)
{
    if (!s)
        return;
    conc_shm_close(s);
    conc__free(s);
}
