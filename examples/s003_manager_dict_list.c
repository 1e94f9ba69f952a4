/* s003_manager_dict_list: seed 003, "Manager: exchanging data between
 * processes", a manager's dict and list shared with ten processes.
 *
 * The Python, inside `with Manager() as manager:`, makes d =
 * manager.dict() and l = manager.list(range(5)), starts ten Processes
 * running f(d, l), which sets d[os.getpid()] = os.getpid(), appends its
 * pid to l and prints l, joins them, and prints d and l. Each child
 * prints the list as it found it after its append: [0, 1, 2, 3, 4, pid,
 * ...]; the last two lines show the ten pids in the dict and the list.
 *
 * conc_manager_start_process serves the manager from a child process, as
 * Manager() does, and conc_manager_shutdown ends it as leaving the `with`
 * block does; each process gets both proxies as bytes
 * (support/proxy_ref.h) and makes proxies of its own.
 */
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"
#include "proxy_ref.h"

#define AUTHKEY "s003-manager" /* Manager() would draw a random one */
#define PROCS   10
#define RANGE   5

struct f_args {
    struct proxy_ref d, l;
};

/* print(x) for a proxy: the repr of a copy of its value. */
static void
print_proxy(conc_proxy *p, const char *copy_method)
{
    conc_obj *copy;
    check(conc_proxy_call(p, copy_method, NULL, NULL, &copy), copy_method);
    conc_buf text = CONC_BUF_INIT;
    check(conc_obj_repr(copy, &text), "conc_obj_repr");
    printf("%.*s\n", (int)text.len, (const char *)text.data);
    conc_buf_free(&text);
    conc_obj_decref(copy);
}

static int
f(const void *arg, size_t len)
{
    const struct f_args *a = arg;
    if (len != sizeof *a)
        return CONC_EINVAL;
    conc_manager *dm, *lm;
    conc_proxy *d, *l;
    proxy_ref_open(&a->d, sizeof a->d, AUTHKEY, &dm, &d);
    proxy_ref_open(&a->l, sizeof a->l, AUTHKEY, &lm, &l);
    conc_obj *pid = conc_obj_int(getpid());
    check(pid ? 0 : CONC_ENOMEM, "conc_obj_int");
    check(conc_dictproxy_set(d, pid, pid), "d[os.getpid()] = os.getpid()");
    check(conc_listproxy_append(l, pid), "l.append(os.getpid())");
    print_proxy(l, "#GETVALUE"); /* print(l) */
    conc_obj_decref(pid);
    conc_proxy_free(d);
    conc_proxy_free(l);
    conc_manager_free(dm);
    conc_manager_free(lm);
    return 0;
}

/* manager.list(range(5)) */
static conc_proxy *
make_list(conc_manager *manager)
{
    conc_obj *items = conc_obj_list(), *args = conc_obj_tuple(1);
    check(items && args ? 0 : CONC_ENOMEM, "conc_obj_list");
    for (int i = 0; i < RANGE; i++)
        check(conc_obj_list_append_new(items, conc_obj_int(i)), "range(5)");
    conc_obj_tuple_set_new(args, 0, items);
    conc_proxy *l;
    check(conc_manager_create(manager, "list", args, &l), "manager.list");
    conc_obj_decref(args);
    return l;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    char address[64];
    snprintf(address, sizeof address, "/tmp/s003-manager-%d.sock",
             (int)getpid());
    conc_manager *manager;
    check(conc_manager_new(address, AUTHKEY, &manager), "conc_manager_new");
    check(conc_manager_start_process(manager), "conc_manager_start_process");
    conc_proxy *d, *l = make_list(manager);
    check(conc_manager_create(manager, "dict", NULL, &d), "manager.dict");
    struct f_args a;
    proxy_ref_pack(manager, d, &a.d);
    proxy_ref_pack(manager, l, &a.l);
    conc_process *p_list[PROCS];
    for (int i = 0; i < PROCS; i++) {
        check(conc_process_new(f, &a, sizeof a, NULL, &p_list[i]),
              "conc_process_new");
        check(conc_process_start(p_list[i]), "conc_process_start");
    }
    for (int i = 0; i < PROCS; i++) {
        check(conc_process_join(p_list[i], CONC_FOREVER), "join");
        conc_process_free(p_list[i]);
    }
    print_proxy(d, "copy");
    print_proxy(l, "#GETVALUE");
    conc_proxy_free(d);
    conc_proxy_free(l);
    check(conc_manager_shutdown(manager), "conc_manager_shutdown");
    conc_manager_free(manager);
    return 0;
}
