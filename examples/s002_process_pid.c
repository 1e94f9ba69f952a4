/* s002_process_pid: seed 002, 6.4 multiprocessing.
 *
 * The Python makes Process(target=get_html, args=(2,)), prints its pid
 * before start (None), starts it and prints the pid again, then joins it;
 * the child sleeps n seconds, prints "sub_progress success" and returns n,
 * and main prints "main progress end". conc_process_pid is 0 before start,
 * printed as None here. The return value becomes the exit code in conc
 * (Python drops it: its exitcode is 0), so main checks that the exit code
 * is n. The two seconds are 40 ms.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static int
get_html(const void *arg, size_t len)
{
    (void)len;
    int n = *(const int *)arg;
    check(conc_sleep(n * SECOND), "conc_sleep");
    printf("sub_progress success\n");
    return n;
}

static void
print_pid(const conc_process *p)
{
    pid_t pid = 0;
    check(conc_process_pid(p, &pid), "conc_process_pid");
    if (pid == 0)
        printf("None\n");
    else
        printf("%d\n", (int)pid);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    int n = 2;
    conc_process *progress;
    check(conc_process_new(get_html, &n, sizeof n, NULL, &progress),
          "conc_process_new");
    print_pid(progress);
    check(conc_process_start(progress), "conc_process_start");
    print_pid(progress);
    check(conc_process_join(progress, CONC_FOREVER), "conc_process_join");
    int code = -1;
    check(conc_process_exitcode(progress, &code) == 1 && code == n
              ? 0
              : CONC_EPROCESS,
          "get_html's exit code");
    conc_process_free(progress);
    printf("main progress end\n");
    return 0;
}
