/* s000_task_worker: seed 000, section 9 (分布式进程), the worker of the
 * master/worker pair over TCP.
 *
 * The Python registers get_task_queue and get_result_queue with a
 * BaseManager without callables, connects to the master at
 * 127.0.0.1:5000 with the authkey b"Willard", takes ten tasks with
 * get(timeout=1), and puts "n * n = n*n" for each in the result queue,
 * printing "Task queue is empty." when a get times out. The master may be
 * this program's twin (s000_task_master) or the seed's Python
 * task_master. The seed sleeps a second per task to stand for work; this
 * twin does not. (The seed's `except Queue.Empty` would itself fail with
 * a NameError; queue.Empty is what it means, CONC_EEMPTY here.)
 *
 * usage: s000_task_worker [HOST [PORT]]   (default 127.0.0.1 5000)
 */
#include <inttypes.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define TASKS        10
#define TASK_TIMEOUT 1.0 /* the seed's task.get(timeout=1) */

static void
run_task(conc_proxy *result, int64_t n)
{
    printf("Run task %" PRId64 " * %" PRId64 "...\n", n, n);
    char text[96];
    snprintf(text, sizeof text, "%" PRId64 " * %" PRId64 " = %" PRId64, n, n,
             n * n);
    conc_obj *r = conc_obj_str(text);
    check(r ? 0 : CONC_ENOMEM, "result");
    check(conc_queueproxy_put(result, r, CONC_FOREVER), "result.put");
    conc_obj_decref(r);
}

int
main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    char address[300];
    snprintf(address, sizeof address, "%s:%s", host,
             argc > 2 ? argv[2] : "5000");
    printf("Connect to server %s...\n", host);
    conc_manager *m;
    check(conc_manager_connect(address, "Willard", &m), "connect");
    conc_proxy *task, *result;
    check(conc_manager_create(m, "get_task_queue", NULL, &task), "task");
    check(conc_manager_create(m, "get_result_queue", NULL, &result), "result");
    for (int i = 0; i < TASKS; i++) {
        conc_obj *o;
        int rc = conc_queueproxy_get(task, TASK_TIMEOUT, &o);
        if (rc == CONC_EEMPTY) {
            printf("Task queue is empty.\n");
            continue;
        }
        check(rc, "task.get");
        int64_t n;
        check(conc_obj_int_value(o, &n), "task");
        conc_obj_decref(o);
        run_task(result, n);
    }
    conc_proxy_free(task);
    conc_proxy_free(result);
    conc_manager_free(m);
    printf("Worker Exit.\n");
    return 0;
}
