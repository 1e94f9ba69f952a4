/* s000_fork: seed 000, section 2 (多进程), os.fork().
 *
 * The Python prints "Process (PID) start...", forks (that part sits in a
 * docstring in the seed, since fork works only on Unix; it runs here), and
 * each side says who it is: the child its pid and its parent's, the parent
 * the pid of the child it created; then both print "Hello.". This is plain
 * fork(2), as os.fork is, not a conc process. The parent waits for the child
 * with waitpid before printing, so the child's lines always come first;
 * in Python the order is up to the scheduler. Only the pids differ from the
 * seed's output.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

int
main(void)
{
    printf("Process (%d) start...\n", (int)getpid());
    fflush(stdout); /* or the child would print the line again */
    pid_t pid = fork();
    check(pid < 0 ? CONC_EAGAIN : 0, "fork");
    if (pid == 0) {
        printf("I am child process (%d) and my parent is %d.\n", (int)getpid(),
               (int)getppid());
        printf("Hello.\n");
        fflush(stdout);
        _exit(0); /* the parent's exit handlers are not the child's */
    }
    int status;
    check(waitpid(pid, &status, 0) == pid ? 0 : CONC_ECHILD, "waitpid");
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : CONC_EPROCESS,
          "child");
    printf("I (%d) just created a child process (%d).\n", (int)getpid(),
           (int)pid);
    printf("Hello.\n");
    return 0;
}
