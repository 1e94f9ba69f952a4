/* s000_task_master: seed 000, section 9 (分布式进程), the master of the
 * master/worker pair over TCP.
 *
 * The Python registers two queue.Queue objects with a BaseManager as
 * get_task_queue and get_result_queue, serves them on 127.0.0.1:5000
 * with the authkey b"Willard", puts ten random tasks through a proxy,
 * takes ten results with get(timeout=10), and shuts the manager down.
 * Here conc_manager_register_object shares two manager queues, and the
 * master reaches them through proxies as the Python does, so the worker
 * may be this program's twin (s000_task_worker) or the seed's Python
 * task_worker. The seed's slip (its return_result_queue returns
 * task_queue) is mended: each name gives its own queue.
 *
 * usage: s000_task_master [PORT]   (default 5000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "conc.h"
#include "example_util.h"

#define TASKS          10
#define MAX_TASK       10000
#define RESULT_TIMEOUT 10.0 /* the seed's result.get(timeout=10) */

static conc_proxy *
get_queue(conc_manager *m, const char *name)
{
    conc_proxy *p;
    check(conc_manager_create(m, name, NULL, &p), name);
    return p;
}

static void
put_tasks(conc_proxy *task)
{
    for (int i = 0; i < TASKS; i++) {
        int n = rand() % (MAX_TASK + 1);
        printf("Put task %d...\n", n);
        conc_obj *o = conc_obj_int(n);
        check(conc_queueproxy_put(task, o, CONC_FOREVER), "task.put");
        conc_obj_decref(o);
    }
}

static void
get_results(conc_proxy *result)
{
    printf("Try get results...\n");
    fflush(stdout);
    for (int i = 0; i < TASKS; i++) {
        conc_obj *r;
        check(conc_queueproxy_get(result, RESULT_TIMEOUT, &r), "result.get");
        conc_buf text = CONC_BUF_INIT;
        const char *s = conc_obj_str_value(r);
        if (!s && conc_obj_repr(r, &text) == 0 &&
            conc_buf_append(&text, "", 1) == 0)
            s = (const char *)text.data;
        printf("Result:%s\n", s ? s : "?");
        conc_buf_free(&text);
        conc_obj_decref(r);
    }
}

int
main(int argc, char **argv)
{
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s",
             argc > 1 ? argv[1] : "5000");
    srand((unsigned)time(NULL));
    void *task_queue, *result_queue;
    check(conc_manager_queue_new(0, &task_queue), "queue");
    check(conc_manager_queue_new(0, &result_queue), "queue");
    conc_manager *manager;
    check(conc_manager_new(address, "Willard", &manager), "manager");
    check(conc_manager_register_object(manager, "get_task_queue",
                                       conc_manager_queue_type(), task_queue),
          "register");
    check(conc_manager_register_object(manager, "get_result_queue",
                                       conc_manager_queue_type(), result_queue),
          "register");
    check(conc_manager_start(manager), "manager.start");
    conc_proxy *task = get_queue(manager, "get_task_queue");
    conc_proxy *result = get_queue(manager, "get_result_queue");
    put_tasks(task);
    get_results(result);
    conc_proxy_free(task);
    conc_proxy_free(result);
    check(conc_manager_shutdown(manager), "manager.shutdown");
    conc_manager_free(manager);
    conc_manager_queue_type()->release(task_queue);
    conc_manager_queue_type()->release(result_queue);
    printf("Master Exit.\n");
    return 0;
}
