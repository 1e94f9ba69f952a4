/* s000_subprocess_communicate: seed 000, section 3 (子进程), communicate().
 *
 * The Python starts nslookup with stdin, stdout and stderr piped, feeds it
 * "set q = mx\npython.org\nexit\n" through communicate(), prints what it
 * answered and "Exit code: 0". nslookup needs the network, which the demo
 * may not have, so the same input goes to a local program, `tr a-z A-Z`,
 * which answers it in capitals. conc_popen_communicate writes the input and
 * reads both outputs at once, as Python's does, so no pipe can fill up and
 * deadlock. As in the seed, print() adds a blank line after the output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define TIMEOUT 10.0 /* seconds; tr answers at once */

int
main(void)
{
    char *const argv[] = {"tr", "a-z", "A-Z", NULL};
    static const char input[] = "set q = mx\npython.org\nexit\n";
    printf("$ tr a-z A-Z\n");
    conc_popen_opts opts = {.stdin_mode = CONC_STDIO_PIPE,
                            .stdout_mode = CONC_STDIO_PIPE,
                            .stderr_mode = CONC_STDIO_PIPE};
    conc_popen *p;
    check(conc_popen_new(argv, &opts, &p), "conc_popen_new");
    conc_buf output, err;
    conc_buf_init(&output);
    conc_buf_init(&err);
    check(
        conc_popen_communicate(p, input, strlen(input), TIMEOUT, &output, &err),
        "conc_popen_communicate");
    int returncode;
    check(conc_popen_returncode(p, &returncode) == 1 ? 0 : CONC_ESTATE,
          "conc_popen_returncode");
    printf("%.*s\n", (int)output.len,
           output.len ? (const char *)output.data : "");
    printf("Exit code: %d\n", returncode);
    if (err.len)
        fwrite(err.data, 1, err.len, stderr);
    conc_buf_free(&output);
    conc_buf_free(&err);
    conc_popen_free(p);
    return returncode == 0 ? 0 : EXIT_FAILURE;
}
