/* s002_manager_dict: seed 002, section 6.7.3, a Manager().dict() shared
 * with processes.
 *
 * The Python makes progress_dict = Manager().dict(), starts two Processes
 * running add_data(p_dict, key, value) (p_dict[key] = value) with
 * ("bobby1", 22) and ("bobby2", 23), joins them and prints the dict:
 * {'bobby1': 22, 'bobby2': 23} (in the order the two children wrote).
 *
 * conc_manager_start_process serves the manager from a child process, as
 * Manager() does; each process gets the dict's proxy as bytes
 * (support/proxy_ref.h) beside its key and value, and makes a proxy of
 * its own. The dict is printed from a copy, with Python's repr.
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"
#include "proxy_ref.h"

#define AUTHKEY "s002-manager" /* Manager() would draw a random one */

struct add_data_args {
    struct proxy_ref dict;
    char key[16];
    int64_t value;
};

static int
add_data(const void *arg, size_t len)
{
    const struct add_data_args *a = arg;
    if (len != sizeof *a)
        return CONC_EINVAL;
    conc_manager *m;
    conc_proxy *p_dict;
    proxy_ref_open(&a->dict, sizeof a->dict, AUTHKEY, &m, &p_dict);
    conc_obj *key = conc_obj_str(a->key), *value = conc_obj_int(a->value);
    int rc =
        key && value ? conc_dictproxy_set(p_dict, key, value) : CONC_ENOMEM;
    conc_obj_decref(key);
    conc_obj_decref(value);
    conc_proxy_free(p_dict);
    conc_manager_free(m);
    return rc;
}

static conc_process *
start(const struct add_data_args *a)
{
    conc_process *p;
    check(conc_process_new(add_data, a, sizeof *a, NULL, &p),
          "conc_process_new");
    check(conc_process_start(p), "conc_process_start");
    return p;
}

/* print(progress_dict): the DictProxy prints the dict's repr. */
static void
print_dict(conc_proxy *d)
{
    conc_obj *copy;
    check(conc_proxy_call(d, "copy", NULL, NULL, &copy), "dict.copy");
    conc_buf text = CONC_BUF_INIT;
    check(conc_obj_repr(copy, &text), "conc_obj_repr");
    printf("%.*s\n", (int)text.len, (const char *)text.data);
    conc_buf_free(&text);
    conc_obj_decref(copy);
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
    conc_proxy *progress_dict;
    check(conc_manager_create(manager, "dict", NULL, &progress_dict),
          "Manager().dict()");
    struct add_data_args first = {.key = "bobby1", .value = 22};
    struct add_data_args second = {.key = "bobby2", .value = 23};
    proxy_ref_pack(manager, progress_dict, &first.dict);
    second.dict = first.dict;
    conc_process *first_progress = start(&first);
    conc_process *second_progress = start(&second);
    check(conc_process_join(first_progress, CONC_FOREVER), "join");
    check(conc_process_join(second_progress, CONC_FOREVER), "join");
    print_dict(progress_dict);
    conc_process_free(first_progress);
    conc_process_free(second_progress);
    conc_proxy_free(progress_dict);
    check(conc_manager_shutdown(manager), "conc_manager_shutdown");
    conc_manager_free(manager);
    return 0;
}
