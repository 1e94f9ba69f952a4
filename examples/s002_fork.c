/* s002_fork: seed 002, 6.3 fork 与多进程的区别.
 *
 * The Python calls os.fork(): both processes go on after it and print
 * "bobby"; the child then prints '子进程 PID ,父进程是: PPID.' and the parent
 * '我是父进程:CHILD_PID.'; both sleep two seconds, which the seed says lets
 * the child end before its parent. This is plain fork(2), as os.fork is.
 * Rather than sleeping, the parent waits for the child with waitpid, which
 * also reaps it, before its own second line, so that line is always the
 * last and no child is left behind. The two "bobby" lines may come in
 * either order.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

int
main(void)
{
    fflush(stdout); /* nothing buffered may be printed twice */
    pid_t pid = fork();
    check(pid < 0 ? CONC_EAGAIN : 0, "fork");
    printf("bobby\n");
    if (pid == 0) {
        printf("子进程 %d ,父进程是: %d.\n", (int)getpid(), (int)getppid());
        fflush(stdout);
        _exit(0); /* the parent's exit handlers are not the child's */
    }
    fflush(stdout);
    int status;
    check(waitpid(pid, &status, 0) == pid ? 0 : CONC_ECHILD, "waitpid");
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : CONC_EPROCESS,
          "child");
    printf("我是父进程:%d.\n", (int)pid);
    return 0;
}
