/* The platform: everything conc takes from the operating system, each with
 * its contract. Nothing outside src/unix calls the OS for these directly;
 * each concern lives in one file of this folder, named beside it.
 *
 * Errors. Calls that can fail return 0 (or a count or a descriptor) and a
 * negated errno on failure, which is also conc's error code for it
 * (CONC_EBADF is -EBADF).
 *
 * Blocking. Two calls block: conc__futex_wait and the descriptor wait
 * (conc__poll_until, conc__poll_fd). They are the choke points through
 * which every blocking wait the library makes on a caller's thread must
 * go, with its deadline: the async layer will make exactly these two
 * coroutine-aware, so that a blocking conc call made inside a coroutine
 * suspends only that coroutine. A module that needs to sleep, even for a
 * fixed nap, sleeps in one of them (conc__poll_until with no descriptor
 * is a timed sleep). The one exception is conc__child_await with no
 * deadline, which blocks in waitid, except in a coroutine, where it polls
 * the pidfd (or naps) through the descriptor wait like a timed wait. Threads
 * and processes the library runs for itself (a pool's result thread, the fork
 * server) run no coroutine and may block in poll directly.
 *
 * Fibers, the stacks and context switch under coroutines, have their own
 * header, unix/fiber.h. Not here yet: the event loop's backends (epoll,
 * io_uring), which come with the async layer. */
#ifndef CONC_UNIX_PLATFORM_H
#define CONC_UNIX_PLATFORM_H

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "unix/fdwait.h" /* descriptor wait: conc__poll_until, _fd */
#include "unix/futex.h"  /* futex wait and wake, conc__cpu_relax */
#include "unix/tid.h"    /* conc__tid: the calling thread's kernel id */

/* ---- pidfd (pidfd.c) ------------------------------------------------------
 * A pidfd names one process for as long as the descriptor is open, so a
 * signal sent through it never reaches a recycled pid, and it turns
 * readable when the process ends, which lets a timed wait poll it.
 *
 * Whether the platform has pidfds is decided once per process, at the
 * first call: by a probe (pidfd_open of the process itself), cached.
 * Kernels before 5.3, seccomp filters and valgrind answer no. Then every
 * pidfd call returns CONC__NO_PIDFD, and every caller has a path without
 * one (timed waits nap and look again; signals go by pid while the child
 * is known unreaped). A forked child inherits the answer; if it then
 * installs a filter that refuses pidfds, the first refusal turns the
 * answer to no for good.
 *
 * Testing knob: CONC_NO_PIDFD=1 in the environment at the first call makes
 * the answer no, so that the fallbacks run on a kernel that has pidfds
 * (CTest runs the process, subprocess and pool tests once more that way).
 * It is inherited by the fork server and every child. */

/* The "no pidfd on this platform" answer. */
#define CONC__NO_PIDFD (-ENOSYS)

/* 1 if pidfds work here, 0 if not. Any thread; cheap after the first. */
int conc__pidfd_available(void);

/* Opens a close-on-exec pidfd for `pid`. Returns it, CONC__NO_PIDFD, or a
 * negated errno (-ESRCH when no such process exists). Any thread. */
int conc__pidfd_of(int pid);

/* Sends `sig` to the process of `pidfd`. Returns 0, -ESRCH once the
 * process has ended (even if not yet reaped), or a negated errno. */
int conc__pidfd_send_signal(int pidfd, int sig);

/* A descriptor of this process's own for descriptor `fd` of process
 * `pid` (pidfd_getfd, Linux 5.6): the same open file, of any kind, sockets
 * included, which /proc/<pid>/fd cannot open. Needs the right to trace
 * `pid` (Yama's ptrace_scope 1 allows it only toward descendants).
 * Returns the new close-on-exec descriptor, CONC__NO_PIDFD, -ESRCH when
 * no such process exists, -EBADF when it has no such descriptor, -EPERM
 * when tracing it is not allowed, or another negated errno. Any thread. */
int conc__pidfd_getfd_of(int pid, int fd);

/* ---- Descriptor passing (fdpass.c) -----------------------------------------
 * Bytes and descriptors over a Unix socket, the descriptors attached to the
 * first byte sent. Sending never raises SIGPIPE. */

/* The most descriptors one message may carry (the kernel's SCM_MAX_FD). */
#define CONC__FDPASS_MAX 253

/* Sends the bytes of iov[0..iovcnt) (at least one byte) with fds[0..nfds)
 * on `sock`, in one sendmsg: some bytes, or none when it fails, but the
 * descriptors always go with the first byte sent. `flags` may add
 * MSG_DONTWAIT. A descriptor below 0 is refused with -EBADF before
 * anything is sent, as is nfds above CONC__FDPASS_MAX (-EINVAL): a
 * message is never sent without the descriptors its reader expects.
 * Resumes after EINTR. Returns the number of bytes sent (at least 1) or a
 * negated errno. Borrows `fds`: the caller still owns and closes them.
 * Any thread. */
ssize_t conc__fd_send(int sock, const struct iovec *iov, int iovcnt,
                      const int *fds, size_t nfds, int flags);

/* Receives into iov[0..iovcnt) from `sock`, with up to `max` descriptors
 * into fds (*nfds set to their count), all close-on-exec. `flags` may add
 * MSG_DONTWAIT. Resumes after EINTR. Returns the number of bytes read (0
 * at end of stream) or a negated errno. A message that carried more
 * descriptors than `max`, or whose control data the kernel truncated, is
 * an error: every descriptor it brought is closed and the call returns
 * -EPROTO (its bytes are consumed and lost), so nothing leaks. On success
 * the caller owns fds[0..*nfds); on failure *nfds is 0 and fds is left
 * as it was. Any thread. */
ssize_t conc__fd_recv(int sock, struct iovec *iov, int iovcnt, int *fds,
                      size_t max, size_t *nfds, int flags);

/* ---- Closing descriptors (closerange.c) ---------------------------------- */

/* Closes every descriptor from `lo` to `hi` inclusive (~0u for all above
 * lo): close_range where the kernel has it (5.9), else the list in
 * /proc/self/fd. For a process about to run foreign code (a forked
 * child): other threads may not open descriptors meanwhile. */
void conc__close_range(unsigned lo, unsigned hi);

/* ---- eventfd (eventfd.c) ---------------------------------------------------
 * A counter descriptor that turns readable once signalled: the way a
 * sleeper in poll is woken by another thread or a forked process. */

/* A new non-blocking, close-on-exec eventfd at 0. Returns it or a negated
 * errno. */
int conc__eventfd_new(void);

/* Adds one: the descriptor turns readable. Never blocks (a saturated
 * counter is readable already). Async-signal-safe; any thread or process
 * holding it. */
void conc__eventfd_signal(int fd);

/* Resets the counter to 0, so that it is no longer readable. */
void conc__eventfd_drain(int fd);

/* ---- signalfd (signalfd.c) -------------------------------------------------
 * Signals read from a descriptor, for a single-threaded process that
 * blocked them (the fork server's SIGCHLD). */

/* A new non-blocking, close-on-exec signalfd for `mask`. The caller blocks
 * those signals first. Returns it or a negated errno. */
int conc__signalfd_new(const sigset_t *mask);

/* Reads every pending signal from `fd` and returns how many there were. */
int conc__signalfd_drain(int fd);

/* ---- Thread identity (tid.h, threadstat.c) -------------------------------
 * conc__tid() is the calling thread's kernel id (tid.h). A thread id is
 * reused once the thread ends; the thread's start time (clock ticks since
 * boot) tells a reused id from the thread that had it. */

/* Reads the state letter ('R', 'S', 'Z' for a zombie, ...) and start time
 * of thread `tid` of any process from /proc, tid 0 meaning the calling
 * thread. Returns 0, -ENOENT or -ESRCH when no such thread exists (any
 * more), -EPROTO for a line it cannot parse, or another negated errno
 * (no /proc, or one that hides other users' processes). */
int conc__thread_stat(uint32_t tid, char *state, uint64_t *start);

/* The CPU time thread `tid` of this process has used, in nanoseconds, or
 * a negated errno (-EINVAL once the thread is gone). Any thread. */
int64_t conc__thread_cpu_ns(uint32_t tid);

/* ---- Memory another process can map (sharedmem.c) --------------------------
 * Shared memory that a process which did not inherit it can still map:
 * an anonymous file (memfd) that it opens through the creator's
 * descriptor in /proc. */

/* A new close-on-exec memfd of `size` bytes (sparse: pages take memory
 * when touched). Returns it, or a negated errno (-ENOSYS where the kernel
 * or a sandbox refuses memfds). */
int conc__memfd_new(size_t size);

/* Opens, read-write and close-on-exec, the file behind descriptor `fd` of
 * process `pid` (through /proc/<pid>/fd). Returns a new descriptor or a
 * negated errno (-ENOENT once the process or its descriptor is gone). */
int conc__open_fd_of(int pid, int fd);

/* ---- Random bytes (random.c) ----------------------------------------------
 * For keys that must be unpredictable (the seed of str hashing). */

/* Fills buf with n random bytes from the kernel's generator. Returns 0 or
 * a negated errno. Any thread. */
int conc__random_bytes(void *buf, size_t n);

/* ---- The child reaper (reaper.c) -------------------------------------------
 * One way to reap, wait for and signal a child of this process, used by
 * processes, subprocesses and process pools; and one list for children
 * whose owner let go while they ran.
 *
 * A child is reaped only by waitid on its own pid. Reaping a child and
 * signalling it are serialized by its owner (under the owner's lock), and
 * a signal is sent only while the child is unreaped: an unreaped child,
 * even a zombie, keeps its pid, so no signal can reach a recycled one.
 * Blocking is done without reaping (outside the owner's lock), so that
 * any number of threads can wait on one child with their own deadlines;
 * whoever looks first after the end reaps.
 *
 * Process handles freed while their child runs are not adopted here: they
 * stay on the process module's list of children, since Python's
 * active_children and the exit handler still see them; they are reaped
 * through conc__child_reap all the same. */

/* What conc__child_reap answers when another part of the program (a
 * waitpid(-1) of the user's, SIGCHLD ignored) reaped the child first. */
#define CONC__CHILD_GONE (-ECHILD)

/* The longest nap of a timed wait without a pidfd (Python's wait naps up
 * to 50 ms; 20 keeps a join close to the child's end). */
#define CONC__CHILD_NAP_MAX_NS ((int64_t)20000000)

/* Reaps child `pid` if it has ended, without blocking. Returns 1 with
 * *status (its exit status, or minus the signal that ended it), 0 while it
 * runs, CONC__CHILD_GONE, or another negated errno. The owner serializes
 * it with conc__child_signal. */
int conc__child_reap(int pid, int *status);

/* Whether child `pid` has ended (or is gone), without reaping it: 1 or 0.
 * Any thread. */
int conc__child_ended(int pid);

/* Sends `sig` to unreaped child `pid` (kill; the owner holds the lock that
 * serializes it with conc__child_reap). An ended child that is not yet
 * reaped ignores it. Returns 0 or a negated errno. */
int conc__child_signal(int pid, int sig);

/* Blocks until child `pid` may have ended or the absolute `deadline`
 * passes, without reaping it; the caller then reaps to know. With no
 * deadline it blocks in waitid(WNOWAIT); with one it polls `pidfd`, or,
 * when that is -1 (no pidfd), naps (growing from 0.1 ms by doubling to
 * CONC__CHILD_NAP_MAX_NS; *nap keeps the next nap, 0 at first) in the
 * descriptor wait. Returns 0 (look again), CONC_ETIMEDOUT, or a negated
 * errno. */
int conc__child_await(int pid, int pidfd, int64_t deadline, int64_t *nap);

/* A child given up by its owner: the reaper reaps it once it ends and then
 * calls `release(o)`, which frees what holds the node. */
struct conc__orphan {
    int pid;
    struct conc__orphan *next; /* the reaper's */
    void (*release)(struct conc__orphan *o);
};

/* Takes `o` (its pid and release set; it stays valid until released) and
 * reaps it at a later conc__reaper_collect. Lock-free; any thread. */
void conc__reaper_adopt(struct conc__orphan *o);

/* Reaps the adopted children that have ended and releases them. Returns
 * how many still run. Cheap when there are none. Any thread. */
int conc__reaper_collect(void);

#endif
