/* s000_subprocess_call: seed 000, section 3 (子进程), subprocess.call.
 *
 * The Python prints "$ nslookup www.python.org", runs
 * subprocess.call(["nslookup", "www.python.org"]), whose output goes
 * straight to the terminal, and prints "Exit code: 0". nslookup needs the
 * network, which the demo may not have, so this runs a local program,
 * `uname -s`, the same way: conc_call inherits stdout, waits for the
 * program and gives its return code ("Linux", then "Exit code: 0").
 */
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define TIMEOUT 10.0 /* seconds; uname answers at once */

int
main(void)
{
    char *const argv[] = {"uname", "-s", NULL};
    printf("$ uname -s\n");
    fflush(stdout); /* before the child writes to the same stdout */
    int r;
    check(conc_call(argv, NULL, TIMEOUT, &r), "conc_call");
    printf("Exit code: %d\n", r);
    return r == 0 ? 0 : EXIT_FAILURE;
}
