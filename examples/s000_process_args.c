/* s000_process_args: seed 000, section 2 (多进程), Process with arguments.
 *
 * The Python prints "Parent process PID.", creates
 * Process(target=run_process, args=("test",)), starts and joins it; the
 * child prints "Run child process test (PID)...". conc_process_new copies
 * the argument bytes (here the string "test" with its NUL) into the child,
 * as Python pickles args. The output is the seed's; only the pids differ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

/* p.join(), then makes sure the child ended well (exitcode 0). */
static void
join(conc_process *p)
{
    check(conc_process_join(p, CONC_FOREVER), "conc_process_join");
    int code = 0;
    int rc = conc_process_exitcode(p, &code);
    check(rc < 0 ? rc : 0, "conc_process_exitcode");
    if (code != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: exitcode %d\n", conc_process_name(p), code);
        _Exit(EXIT_FAILURE);
    }
    conc_process_free(p);
}

static int
run_process(const void *arg, size_t len)
{
    (void)len;
    const char *name = arg;
    printf("Run child process %s (%d)...\n", name, (int)getpid());
    return 0;
}

int
main(void)
{
    printf("Parent process %d.\n", (int)getpid());
    static const char name[] = "test";
    conc_process *p;
    check(conc_process_new(run_process, name, sizeof name, NULL, &p),
          "conc_process_new");
    printf("Child process will start.\n");
    check(conc_process_start(p), "conc_process_start");
    join(p); /* waits for the child, to synchronise the two processes */
    printf("Child process end.\n");
    return 0;
}
