/* The contract of DESIGN.md "Conventions" over the newest modules (ws,
 * tls, aio_net, aio_subprocess, aio_stream, dist, manager, obj,
 * listener), where a generated test cannot reach: calls after close or
 * shutdown give CONC_ECLOSED, closing twice is harmless, `_free(NULL)`
 * does nothing; CONC_FOREVER is accepted; every constructor and main call
 * fails cleanly (an error code, nothing leaked, no panic) when any one of
 * its allocations fails; and error messages name their cause. (NULL
 * arguments, NaN and negative timeouts are checked over the whole API by
 * test_contract_null, generated from the headers.) */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "conc_test.h"
#include "tasks.h"

/* ---- Argument checks come before state checks ----------------------------
 */

static int
always_true(void *arg)
{
    (void)arg;
    return 1;
}

/* A NaN timeout is bad input whatever the state: CONC_EINVAL, not the
 * CONC_ENOTOWNER of a caller that does not hold the lock. */
static void
test_cond_wait_nan_not_owner(void **state)
{
    (void)state;
    conc_cond *c;
    assert_conc_ok(conc_cond_new(NULL, &c));
    assert_conc(conc_cond_wait(c, NAN), CONC_EINVAL);
    assert_conc(conc_cond_wait_for(c, always_true, NULL, NAN), CONC_EINVAL);
    assert_conc(conc_cond_wait(c, 0), CONC_ENOTOWNER);
    conc_cond_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_cond_wait_nan_not_owner),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
