/* s002_manager_queue_pool: seed 002, section 6.7.1, a Manager().Queue
 * used from a Pool.
 *
 * The Python makes queue = Manager().Queue(10) (a multiprocessing.Queue
 * cannot go to a Pool's workers; a manager's can), a Pool(2), and submits
 * producer(queue), which puts "a" and sleeps 2 s, and consumer(queue),
 * which sleeps 2 s, gets and prints the item; then close() and join().
 * The output is "a".
 *
 * conc_manager_start_process serves the manager from a child process, as
 * Manager() does; each task gets the queue's proxy as bytes
 * (support/proxy_ref.h) and makes a proxy of its own in its worker. A
 * second is 20 ms.
 */
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"
#include "proxy_ref.h"

#define SECOND  0.02           /* one second of the seed, scaled down */
#define AUTHKEY "s002-manager" /* Manager() would draw a random one */
#define MAXSIZE 10

static int
producer(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    conc_manager *m;
    conc_proxy *queue;
    proxy_ref_open(arg, len, AUTHKEY, &m, &queue);
    conc_obj *a = conc_obj_str("a");
    int rc = conc_queueproxy_put(queue, a, CONC_FOREVER);
    conc_obj_decref(a);
    if (rc == 0)
        rc = conc_sleep(2 * SECOND);
    conc_proxy_free(queue);
    conc_manager_free(m);
    return rc;
}

static int
consumer(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    conc_manager *m;
    conc_proxy *queue;
    proxy_ref_open(arg, len, AUTHKEY, &m, &queue);
    conc_obj *data = NULL;
    int rc = conc_sleep(2 * SECOND);
    if (rc == 0)
        rc = conc_queueproxy_get(queue, CONC_FOREVER, &data);
    if (rc == 0)
        printf("%s\n", conc_obj_str_value(data));
    conc_obj_decref(data);
    conc_proxy_free(queue);
    conc_manager_free(m);
    return rc;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    char address[64];
    snprintf(address, sizeof address, "/tmp/s002-manager-%d.sock",
             (int)getpid());
    conc_manager *manager;
    check(conc_manager_new(address, AUTHKEY, &manager), "conc_manager_new");
    check(conc_manager_start_process(manager), "conc_manager_start_process");
    conc_obj *args = conc_obj_tuple(1);
    check(args ? 0 : CONC_ENOMEM, "conc_obj_tuple");
    conc_obj_tuple_set_new(args, 0, conc_obj_int(MAXSIZE));
    conc_proxy *queue;
    check(conc_manager_create(manager, "Queue", args, &queue), "Queue(10)");
    conc_obj_decref(args);
    struct proxy_ref ref;
    proxy_ref_pack(manager, queue, &ref);

    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 2}, &pool),
          "conc_pool_new");
    conc_async_result *r1, *r2;
    check(conc_pool_apply_async(pool, producer, &ref, sizeof ref, NULL, &r1),
          "apply_async(producer)");
    check(conc_pool_apply_async(pool, consumer, &ref, sizeof ref, NULL, &r2),
          "apply_async(consumer)");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    /* Python's apply_async would drop a failure silently; say it. */
    const void *data;
    size_t len;
    check(conc_async_result_get(r1, 0, &data, &len), "producer");
    check(conc_async_result_get(r2, 0, &data, &len), "consumer");
    conc_async_result_free(r1);
    conc_async_result_free(r2);
    conc_pool_free(pool);
    conc_proxy_free(queue);
    check(conc_manager_shutdown(manager), "conc_manager_shutdown");
    conc_manager_free(manager);
    return 0;
}
