#!/usr/bin/env python3
"""Writes tests/test_contract_null's C program from the public headers.

For every function declared in include/conc/*.h, and for each of its
pointer parameters in turn, the program calls the function with NULL in
that place and valid values elsewhere, in a child process of its own, and
checks the contract of docs/conventions.md: a function returning int
returns CONC_EINVAL; one returning a pointer returns NULL; one returning
another value (a size, a count, a flag, an enum) returns 0; a void one
does nothing; and none crashes or hangs (each child has ALARM_S seconds).
A parameter of any function-pointer type the headers declare counts as a
pointer.

Every function with a time parameter (TIME_PARAMS: timeout, delay, when,
seconds) is also called, each time in a child of its own, with NaN there,
which must give CONC_EINVAL, and with 0 and with -5, which must give the
same result: a negative time behaves as 0 (NEGATIVE_DIFFERS lists the
documented exceptions, TIMING_DEPENDENT the calls whose result with 0
depends on how far another thread got).

A few parameters accept NULL by design (options, user context pointers,
optional out-parameters, each documented in its header): NULLABLE lists
them, with what the call must then return, and the call is still made,
so it must at least not crash or hang.

Valid values come from tables: VALUES gives a C expression for each
parameter type, and CONSTRUCTORS makes a live object for each opaque
handle type, in the child, before the call. A declaration the parser
cannot read, or a parameter type no table knows, stops the generation with
an error naming it: a function added later cannot escape the test.

usage: gen_null_test.py INCLUDE_DIR OUTPUT.c
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conc_api  # noqa: E402

ALARM_S = 10

# Handle types: C type name -> statements that set the variable `v`.
CONSTRUCTORS = {
    'conc_lock': 'MUST(conc_lock_new(NULL, &v));',
    'conc_rlock': 'MUST(conc_rlock_new(NULL, &v));',
    'conc_cond': 'MUST(conc_cond_new(NULL, &v));',
    'conc_sem': 'MUST(conc_sem_new(1, NULL, &v));',
    'conc_bsem': 'MUST(conc_bsem_new(1, NULL, &v));',
    'conc_event': 'MUST(conc_event_new(NULL, &v));',
    'conc_barrier': 'MUST(conc_barrier_new(1, NULL, &v));',
    'conc_thread': 'v = conc_thread_current();',
    'conc_local': 'MUST(conc_local_new(NULL, &v));',
    'conc_queue': 'MUST(conc_queue_new(NULL, &v));',
    'conc_simplequeue': 'MUST(conc_simplequeue_new(NULL, &v));',
    'conc_process': 'MUST(conc_process_new(dummy_process, NULL, 0, NULL, &v));',
    'conc_popen': 'MUST(conc_popen_new(true_argv, NULL, &v));',
    'conc_aio_subprocess':
        'MUST(conc_aio_create_subprocess_exec(true_argv, NULL, &v));',
    'conc_conn': '{ conc_conn *other; MUST(conc_pipe(NULL, &v, &other)); }',
    'conc_listener': 'MUST(conc_listener_new("127.0.0.1:0", NULL, &v));',
    'conc_mpqueue': 'MUST(conc_joinable_new(NULL, &v));',
    'conc_arena': 'MUST(conc_arena_new(1 << 20, &v));',
    'conc_value': 'MUST(conc_value_new(CONC_CTYPE_I32, NULL, NULL, &v));',
    'conc_array': 'MUST(conc_array_new(CONC_CTYPE_I32, 4, NULL, NULL, &v));',
    'conc_shm': 'MUST(conc_shm_create(NULL, 4096, &v)); conc_shm_unlink(v);',
    'conc_future': 'MUST(conc_future_new(&v));',
    'conc_async_result': 'MUST(conc_future_new(&v));',
    'conc_executor': 'MUST(conc_thread_executor_new(NULL, &v));',
    'conc_pool': 'MUST(conc_threadpool_new(&(conc_pool_opts){.processes = 1}, &v));',
    'conc_map_iter': '{ conc_executor *ex; MUST(conc_thread_executor_new(NULL, &ex));'
                     ' MUST(conc_executor_map(ex, dummy_task, &items, NULL, &v)); }',
    'conc_obj': 'v = conc_obj_list();',
    # Scale-out objects against a port nobody listens on, told to keep
    # trying in the background; without hiredis (-ENOSYS) the case passes.
    'conc_dist_executor':
        '{ int r_ = conc_dist_executor_new("redis://127.0.0.1:1", NULL, "q",'
        ' &(conc_dist_opts){.retry_on_startup = 1, .connect_timeout = 0.1},'
        ' &v); if (r_ == -ENOSYS) _exit(0); MUST(r_); }',
    'conc_dist_worker':
        '{ int r_ = conc_dist_worker_new("redis://127.0.0.1:1", NULL, "q",'
        ' &(conc_dist_worker_opts){.retry_on_startup = 1,'
        ' .connect_timeout = 0.1}, &v); if (r_ == -ENOSYS) _exit(0);'
        ' MUST(r_); }',
    'conc_as_completed_iter': '{ conc_future *f; MUST(conc_future_new(&f));'
                              ' MUST(conc_as_completed(&f, 1, 0, &v)); }',
    'conc_aio_loop': 'MUST(conc_aio_loop_new(NULL, &v));',
    'conc_aio_handle': '{ conc_aio_loop *lp; MUST(conc_aio_loop_new(NULL, &lp));'
                       ' MUST(conc_aio_call_soon(lp, dummy_aio_cb, NULL, &v)); }',
    # Made by a task of a loop that is then left stopped (see the prelude).
    'conc_aio_taskgroup': 'v = held_taskgroup();',
    'conc_aio_timeout': 'make_held(); v = made_to;',
    'conc_aio_queue': 'MUST(conc_aio_queue_new(NULL, &v));',
    'conc_aio_lock': 'MUST(conc_aio_lock_new(&v));',
    'conc_aio_event': 'MUST(conc_aio_event_new(&v));',
    'conc_aio_cond': 'MUST(conc_aio_cond_new(NULL, &v));',
    'conc_aio_sem': 'MUST(conc_aio_sem_new(1, &v));',
    'conc_aio_bsem': 'MUST(conc_aio_bsem_new(1, &v));',
    'conc_aio_barrier': 'MUST(conc_aio_barrier_new(1, &v));',
    'conc_aio_stream': '{ int sv[2]; MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));'
                       ' MUST(conc_aio_stream_from_fd(sv[0], NULL, &v)); }',
    'conc_aio_server': '{ conc_aio_loop *lp; MUST(conc_aio_loop_new(NULL, &lp));'
                       ' MUST(conc_aio_start_server(lp, "127.0.0.1", 0,'
                       ' dummy_stream_handler, NULL, NULL, &v)); }',
    'conc_aio_datagram': 'MUST(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0,'
                         ' NULL, &v));',
    'conc_aio_server_group': 'MUST(conc_aio_server_group_start("127.0.0.1", 0,'
                             ' 1, dummy_stream_handler, NULL, NULL, &v));',
    'conc_manager': 'MUST(conc_manager_new("127.0.0.1:0", NULL, &v));',
    # A WebSocket client connected to a server of the same loop, made by a
    # task of a loop then left stopped (see the prelude).
    'conc_ws': 'v = held_ws();',
    'conc_ws_server': '{ conc_aio_loop *lp; MUST(conc_aio_loop_new(NULL, &lp));'
                      ' MUST(conc_ws_serve(lp, "127.0.0.1", 0,'
                      ' dummy_ws_handler, NULL, NULL, &v)); }',
    'conc_tls_context': 'MUST(conc_tls_context_new(&(conc_tls_opts){'
                        '.verify = CONC_TLS_VERIFY_NONE}, &v));',
    'conc_tls_session': '{ conc_tls_context *cx; MUST(conc_tls_context_new('
                        '&(conc_tls_opts){.verify = CONC_TLS_VERIFY_NONE},'
                        ' &cx)); MUST(conc_tls_session_new(cx, NULL, &v));'
                        ' conc_tls_context_free(cx); }',
    # A dict in a manager served by this child, reached over loopback.
    'conc_proxy': '{ conc_manager *mm; MUST(conc_manager_new("127.0.0.1:0",'
                  ' NULL, &mm)); MUST(conc_manager_start(mm));'
                  ' MUST(conc_manager_create(mm, "dict", NULL, &v)); }',
}

# Other parameter types: C type -> (declaration of `v`, expression passed).
VALUES = {
    'int': ('', '0'),
    'unsigned': ('', '1'),
    'size_t': ('', '1'),
    'double': ('', '0.0'),
    'int64_t': ('', '0'),
    'uint64_t': ('', '0'),
    'conc_ctype': ('', 'CONC_CTYPE_I32'),
    'conc_return_when': ('', 'CONC_ALL_COMPLETED'),
    'conc_start_method': ('', 'CONC_START_FORK'),
    'void *': ('', 'scratch'),
    'const void *': ('', 'scratch'),
    'const char *': ('', '"conc_null_test"'),
    'char *const *': ('', 'true_argv'),
    'unsigned char *': ('', 'scratch'),
    'void **': ('void *v = NULL;', '&v'),
    'const void **': ('const void *v = NULL;', '&v'),
    'int *': ('int v = 0;', '&v'),
    'unsigned *': ('unsigned v = 0;', '&v'),
    'size_t *': ('size_t v = 0;', '&v'),
    'double *': ('double v = 0;', '&v'),
    'int64_t *': ('int64_t v = 0;', '&v'),
    'uint64_t *': ('uint64_t v = 0;', '&v'),
    'pid_t *': ('pid_t v = 0;', '&v'),
    'conc_buf *': ('conc_buf v = CONC_BUF_INIT;', '&v'),
    'const conc_buf *': ('conc_buf v = CONC_BUF_INIT;', '&v'),
    'conc_obj_load_error *': ('conc_obj_load_error v;', '&v'),
    'conc_completed_process *': ('conc_completed_process v;', '&v'),
    'conc_arena_ref *': ('conc_arena_ref v;', '&v'),
    'const conc_arena_ref *':
        ('conc_arena_ref v; { conc_arena *ar; MUST(conc_arena_new(1 << 20, &ar));'
         ' MUST(conc_arena_share(ar, &v)); }', '&v'),
    'conc_mpqueue_ref *': ('conc_mpqueue_ref v;', '&v'),
    'const conc_mpqueue_ref *':
        ('conc_mpqueue_ref v; { conc_mpqueue *q; MUST(conc_mpqueue_new(NULL, &q));'
         ' MUST(conc_mpqueue_share(q, &v)); }', '&v'),
    'conc_conn_ref *': ('conc_conn_ref v;', '&v'),
    'const conc_conn_ref *':
        ('conc_conn_ref v; { conc_conn *pa, *pb; MUST(conc_pipe(NULL, &pa, &pb));'
         ' MUST(conc_conn_share(pb, &v)); }', '&v'),
    'const conc_items *': ('', '&items'),
    'conc_future *const *': ('conc_future *v[1]; MUST(conc_future_new(&v[0]));',
                             'v'),
    'conc_dist_status *': ('conc_dist_status v;', '&v'),
    'conc_task_fn': ('', 'dummy_task'),
    'conc_thread_fn': ('', 'dummy_thread'),
    'conc_process_fn': ('', 'dummy_process'),
    'conc_future_cb': ('', 'dummy_future_cb'),
    'conc_aio_cb': ('', 'dummy_aio_cb'),
    'conc_aio_stream_handler': ('', 'dummy_stream_handler'),
    'conc_ws_handler': ('', 'dummy_ws_handler'),
    'conc_ws_producer': ('', 'dummy_ws_producer'),
    'conc_ws_kind': ('', 'CONC_WS_TEXT'),
    'conc_ws_kind *': ('conc_ws_kind v = CONC_WS_TEXT;', '&v'),
    'const conc_ws_part *': ('conc_ws_part v[1] = {{"x", 1}};', 'v'),
    'conc_ws *const *': ('conc_ws *v[1] = {held_ws()};', 'v'),
    'conc_future **': ('conc_future *v = NULL;', '&v'),
    'conc_future *const **': ('conc_future *const *v = NULL;', '&v'),
    'conc_predicate_fn': ('', 'dummy_predicate'),
    'conc_local_dtor_fn': ('', 'dummy_free'),
    'conc_queue_drop_fn': ('', 'dummy_free'),
    'conc_excepthook_fn': ('', 'dummy_hook'),
    'conc_malloc_fn': ('', 'malloc'),
    'conc_realloc_fn': ('', 'realloc'),
    'conc_calloc_fn': ('', 'calloc'),
    'conc_free_fn': ('', 'free'),
    'conc_manager **': ('conc_manager *v = NULL;', '&v'),
    'conc_proxy **': ('conc_proxy *v = NULL;', '&v'),
    'const conc_manager_type *': ('', 'conc_manager_dict_type()'),
}

# Values for one parameter of one function, where the type's is not valid.
OVERRIDES = {
    ('conc_aio_start_server', 'host'): ('', '"127.0.0.1"'),
    ('conc_aio_start_unix_server', 'path'):
        ('', '"/tmp/conc_null_test_stream.sock"'),
    ('conc_aio_datagram_open', 'local_host'): ('', '"127.0.0.1"'),
    ('conc_aio_datagram_open', 'remote_host'): ('', '"127.0.0.1"'),
    ('conc_aio_datagram_sendto', 'host'): ('', '"127.0.0.1"'),
    ('conc_aio_server_group_start', 'host'): ('', '"127.0.0.1"'),
    ('conc_aio_getaddrinfo', 'host'): ('', '"127.0.0.1"'),
    ('conc_process_list_free', 'list'):
        ('conc_process **v = NULL; size_t n = 0;'
         ' MUST(conc_active_children(&v, &n));', 'v'),
    ('conc_thread_list_free', 'list'):
        ('conc_thread **v = NULL; size_t n = 0;'
         ' MUST(conc_thread_enumerate(&v, &n));', 'v'),
    ('conc_arena_dealloc', 'ptr'): ('', 'NULL'),
    ('conc_shm_create', 'name'): ('', 'NULL'),
    ('conc_shm_attach', 'name'): ('', '"conc_null_test_absent"'),
    ('conc_buf_init_with', 'storage'): ('', 'scratch'),
    # Addresses that leave no socket file behind and connect to nothing.
    ('conc_listener_new', 'address'): ('', '"127.0.0.1:0"'),
    ('conc_client_connect', 'address'): ('', '"127.0.0.1:1"'),
    # A Redis address that refuses at once (a name would need a resolver).
    ('conc_dist_executor_new', 'address'): ('', '"redis://127.0.0.1:1"'),
    ('conc_dist_worker_new', 'address'): ('', '"redis://127.0.0.1:1"'),
    ('conc_dist_status_get', 'address'): ('', '"redis://127.0.0.1:1"'),
    ('conc_manager_new', 'address'): ('', '"127.0.0.1:0"'),
    ('conc_manager_connect', 'address'): ('', '"127.0.0.1:1"'),
    ('conc_manager_create', 'type_name'): ('', '"dict"'),
    ('conc_manager_create', 'args'): ('', 'NULL'),
    ('conc_proxy_call', 'method'): ('', '"__len__"'),
    ('conc_proxy_call', 'args'): ('', 'NULL'),
    ('conc_proxy_call', 'kwds'): ('', 'NULL'),
    # A slice of one element: NULL is valid for an empty one.
    ('conc_array_get_slice', 'start'): ('', '0'),
    ('conc_array_set_slice', 'start'): ('', '0'),
}

# Parameters that accept NULL by design -> what the call returns then (a C
# expression), or None when any result is right (the call must still
# neither crash nor hang). Each is documented in its header.
NULLABLE = {
    ('conc_ws_serve', 'host'): '0',  # every interface
    ('conc_ws_serve', 'arg'): None,  # the sample host is not numeric
    ('conc_ws_unix_serve', 'arg'): '0',
    ('conc_ws_send_stream', 'arg'): None,  # passed to the producer as it is
    ('conc_ws_recv', 'kind'): None,  # optional out-parameters
    ('conc_ws_recv_stream', 'kind'): None,
    ('conc_ws_close_code', 'reason'): None,
    ('conc_ws_broadcast', 'sent'): None,
    ('conc_ws_close', 'reason'): None,  # no reason
    ('conc_aio_start_server', 'host'): '0',  # every interface
    ('conc_aio_start_server', 'arg'): '0',
    ('conc_aio_start_unix_server', 'arg'): '0',
    ('conc_aio_datagram_open', 'local_host'): '0',  # the wildcard
    ('conc_aio_datagram_open', 'remote_host'): '0',  # not connected
    ('conc_aio_datagram_sendto', 'host'): None,  # the connected peer
    ('conc_aio_datagram_recvfrom', 'addr'): None,  # sender not wanted
    ('conc_aio_server_group_start', 'host'): '0',  # every interface
    ('conc_aio_server_group_start', 'arg'): '0',
    ('conc_future_result', 'data'): None,
    ('conc_future_result', 'len'): None,
    ('conc_async_result_get', 'data'): None,
    ('conc_async_result_get', 'len'): None,
    ('conc_map_next', 'data'): None,
    ('conc_map_next', 'len'): None,
    ('conc_executor_submit', 'out'): None,
    ('conc_executor_submit_with', 'out'): None,
    ('conc_pool_apply', 'result'): None,
    ('conc_pool_apply_async', 'out'): None,
    ('conc_pool_map_async', 'result'): None,
    ('conc_pool_starmap_async', 'result'): None,
    ('conc_wait', 'done'): None,
    ('conc_thread_start', 'out'): '0',
    ('conc_thread_start', 'arg'): '0',
    ('conc_thread_join', 'status'): None,
    ('conc_barrier_wait', 'index'): '0',
    ('conc_popen_poll', 'returncode'): None,
    ('conc_popen_wait', 'returncode'): None,
    ('conc_popen_returncode', 'returncode'): None,
    ('conc_popen_communicate', 'out'): None,
    ('conc_popen_communicate', 'err'): None,
    ('conc_popen_communicate', 'input'): None,
    ('conc_call', 'returncode'): None,
    ('conc_aio_subprocess_wait', 'returncode'): None,
    ('conc_aio_subprocess_returncode', 'returncode'): None,
    ('conc_aio_subprocess_communicate', 'out'): None,  # outside a task:
    ('conc_aio_subprocess_communicate', 'err'): None,  # CONC_ESTATE
    ('conc_subprocess_reap', 'running'): '0',
    ('conc_buf_detach', 'len'): None,
    ('conc_buf_init_with', 'storage'): None,
    ('conc_value_new', 'init'): '0',
    ('conc_array_new', 'init'): '0',
    ('conc_shm_create', 'name'): None,
    ('conc_queue_put', 'item'): '0',
    ('conc_queue_put_nowait', 'item'): '0',
    ('conc_queue_put_priority', 'item'): None,
    ('conc_simplequeue_put', 'item'): '0',
    ('conc_local_set', 'value'): '0',
    ('conc_cond_wait_for', 'arg'): None,
    ('conc_future_add_done_callback', 'arg'): '0',
    ('conc_set_excepthook', 'hook'): None,
    ('conc_set_excepthook', 'arg'): None,
    ('conc_simplequeue_new', 'drop'): '0',
    ('conc_local_new', 'dtor'): '0',
    ('conc_arena_dealloc', 'ptr'): '0',
    ('conc_arena_contains', 'ptr'): '0',
    ('conc_future_set_exception', 'msg'): None,
    ('conc_mpqueue_put', 'data'): None,  # with len 0 only; see LEN_ZERO
    ('conc_dist_executor_new', 'password'): None,
    ('conc_dist_worker_new', 'password'): None,
    ('conc_dist_status_get', 'password'): None,
    ('conc_fail', 'fmt'): '0',  # records no message, returns its err (0)
    ('conc_aio_call_soon', 'arg'): None,
    ('conc_aio_call_soon', 'out'): None,
    ('conc_aio_call_later', 'arg'): None,
    ('conc_aio_call_later', 'out'): None,
    ('conc_aio_call_at', 'arg'): None,
    ('conc_aio_call_at', 'out'): None,
    ('conc_aio_call_soon_threadsafe', 'arg'): None,
    ('conc_aio_call_soon_threadsafe', 'out'): None,
    ('conc_aio_run', 'result'): None,
    ('conc_aio_create_task', 'out'): None,
    ('conc_aio_loop_create_task', 'out'): None,
    ('conc_aio_taskgroup_create_task', 'out'): None,
    ('conc_aio_all_tasks', 'loop'): None,  # the running loop
    ('conc_aio_task_cancel', 'msg'): None,
    ('conc_aio_wait', 'done'): None,
    ('conc_aio_run_in_executor', 'ex'): None,  # the loop's default executor
    ('conc_aio_to_thread', 'result'): None,
    ('conc_aio_to_process', 'result'): None,
    ('conc_aio_add_signal_handler', 'arg'): None,
    ('conc_obj_loads', 'err'): None,  # optional: where a refusal was
    ('conc_obj_next', 'value'): None,  # optional for dicts, NULL for sets
    ('conc_obj_foreign', 'args'): None,  # NULL: the bare global
    ('conc_obj_foreign', 'state'): None,  # NULL: no state
    # Outside a loop these give CONC_ESTATE; a NULL item is a valid item.
    ('conc_aio_queue_put', 'item'): None,
    ('conc_aio_queue_put_nowait', 'item'): None,
    ('conc_aio_queue_put_priority', 'item'): None,
    ('conc_aio_cond_wait_for', 'arg'): None,
    ('conc_aio_barrier_wait', 'index'): None,
    ('conc_barrierproxy_wait', 'index'): None,  # NULL: index not wanted
    ('conc_manager_new', 'authkey'): None,  # NULL: no handshake
    ('conc_manager_connect', 'authkey'): None,
    ('conc_manager_register', 'arg'): None,  # passed on to create
    ('conc_manager_register_object', 'self'): None,
    ('conc_manager_create', 'args'): None,  # NULL: no arguments
    ('conc_proxy_call', 'args'): None,
    ('conc_proxy_call', 'kwds'): None,
    ('conc_tls_session_new', 'server_hostname'): None,  # servers, no verify
    ('conc_aio_stream_start_tls', 'server_hostname'): None,
}

# Statements run after a call that did not get NULL in the named
# parameter, with {name} standing for that argument: what the call
# started must end before the child exits (sanitizers report a thread
# never joined).
AFTER = {
    'conc_thread_start': ('out', 'conc_thread_join(*{out}, CONC_FOREVER, NULL);'),
}


def is_handle(t):
    base = t.replace('const ', '').rstrip(' *')
    return t.count('*') == 1 and t.endswith('*') and base in CONSTRUCTORS


def is_nullable(d, p):
    if (d.name, p.name) in NULLABLE:
        return True
    return p.type.endswith('_opts *')  # NULL means Python's defaults


def param_value(d, i, p):
    """Statements declaring arg i and the expression that passes it."""
    key = (d.name, p.name)
    if key in OVERRIDES:
        decl, expr = OVERRIDES[key]
    elif p.type.endswith('_opts *'):
        decl, expr = '', 'NULL'
    elif is_handle(p.type):
        base = p.type.replace('const ', '').rstrip(' *')
        decl = '%s *v = NULL; %s' % (base, CONSTRUCTORS[base])
        expr = 'v'
    elif p.type.endswith('**') and p.type.replace('const ', '')[:-2].strip() \
            in CONSTRUCTORS:
        base = p.type.replace('const ', '')[:-2].strip()
        decl, expr = '%s *v = NULL;' % base, '&v'
    elif p.type.endswith('***'):
        base = p.type[:-3].strip()
        decl, expr = '%s **v = NULL;' % base, '&v'
    elif p.type in VALUES:
        decl, expr = VALUES[p.type]
    else:
        raise conc_api.ParseError(
            '%s: parameter %r has type %r, for which tools/gen_null_test.py '
            'has no valid value: add one to its tables' % (d.where(), p.name,
                                                           p.type))
    var = 'a%d' % i
    decl = re.sub(r'\bv\b', var, decl)
    expr = re.sub(r'\bv\b', var, expr)
    return decl, expr


def expected(d, p):
    if is_nullable(d, p):
        return NULLABLE.get((d.name, p.name))
    r = d.ret
    if r == 'void':
        return None
    if r == 'int':
        return 'CONC_EINVAL'
    if r.endswith('*'):
        return 'NULL'
    return '0'


def gen_case(d, idx, cid):
    p = d.params[idx]
    lines = ['static int', 'case_%d(void)' % cid, '{']
    args = []
    for i, q in enumerate(d.params):
        if i == idx:
            args.append('NULL')
            continue
        decl, expr = param_value(d, i, q)
        if decl:
            lines.append('    ' + decl)
        args.append(expr)
    call = '%s(%s)' % (d.name, ', '.join(args))
    want = expected(d, p)
    what = '%s with NULL %s' % (d.name, p.name)
    after = ''
    if d.name in AFTER and AFTER[d.name][0] != p.name:
        pname, stmt = AFTER[d.name]
        k = [q.name for q in d.params].index(pname)
        after = '    if (r == 0)\n        ' + stmt.format(**{pname: args[k]})
    if d.ret == 'void':
        lines.append('    %s;' % call)
        lines.append('    return 0;')
    elif want is None and not after:
        lines.append('    (void)%s;' % call)
        lines.append('    return 0;')
    elif after:
        lines.append('    int r = %s;' % call)
        if after:
            lines.append(after)
        if want is None or d.ret != 'int':
            lines.append('    return 0;')
        else:
            lines.append('    return check_int(r, %s, "%s");' % (want, what))
    elif d.ret == 'int':
        lines.append('    return check_int(%s, %s, "%s");' % (call, want, what))
    elif d.ret.endswith('*'):
        lines.append('    return check_ptr((const void *)%s, "%s");' % (call, what))
    else:
        lines.append('    return check_zero(%s == 0, "%s");' % (call, what))
    lines.append('}')
    return '\n'.join(lines)


# Parameters that are a span of time (relative seconds, or a loop time
# for `when`): NaN must give CONC_EINVAL, a negative value what 0 gives.
TIME_PARAMS = ('timeout', 'delay', 'when', 'seconds')

# Calls whose result with a negative time may differ from theirs with 0:
# `when` is a time on the loop's clock, not a span; time.sleep refuses a
# negative duration (documented in time.h).
NEGATIVE_DIFFERS = {'conc_aio_call_at', 'conc_sleep'}

# Calls whose result with 0 depends on how far another thread or process
# got (a pool's worker, a child running "true", a Redis executor's thread
# retrying its connection): with a negative time they must neither hang
# nor refuse it (CONC_EINVAL where 0 is not), but may find the work done
# or not.
TIMING_DEPENDENT = {
    'conc_aio_subprocess_wait', 'conc_map_next', 'conc_subprocess_run',
    'conc_dist_submit', 'conc_dist_submit_many', 'conc_dist_status_get',
    'conc_pool_apply', 'conc_pool_map', 'conc_pool_starmap', 'conc_pool_join',
    'conc_popen_communicate', 'conc_popen_wait', 'conc_call',
    'conc_check_call', 'conc_check_output',
}


def time_param(d):
    """The index of d's time parameter, or None."""
    for i, p in enumerate(d.params):
        if p.type == 'double' and p.name in TIME_PARAMS:
            return i
    return None


def gen_time_case(d, idx, cid, value):
    """A case that calls d with `value` as its time and valid values
    elsewhere, and returns the call's result."""
    lines = ['static int', 'case_%d(void)' % cid, '{']
    args = []
    for i, q in enumerate(d.params):
        if i == idx:
            args.append(value)
            continue
        decl, expr = param_value(d, i, q)
        if decl:
            lines.append('    ' + decl)
        args.append(expr)
    lines.append('    int r = %s(%s);' % (d.name, ', '.join(args)))
    if d.name in AFTER:
        pname, stmt = AFTER[d.name]
        k = [q.name for q in d.params].index(pname)
        lines.append('    if (r == 0)\n        ' +
                     stmt.format(**{pname: args[k]}))
    lines.append('    return r;')
    lines.append('}')
    return '\n'.join(lines)


def gen_time_test(d, idx, cid):
    """Cases and the test of d's time parameter: NaN gives CONC_EINVAL,
    and -5 gives what 0 gives. Returns (code, next cid)."""
    name = d.params[idx].name
    out = []
    values = ('NAN',) if d.name in NEGATIVE_DIFFERS else ('NAN', '0.0', '-5.0')
    for k, value in enumerate(values):
        out.append(gen_time_case(d, idx, cid + k, value))
    body = ['static void', 'test_%s_%s(void **state)' % (d.name, name), '{',
            '    (void)state;', '    int failed = 0, nan, zero, neg;',
            '    failed += run_value(case_%d, "%s with NaN %s", &nan);'
            % (cid, d.name, name),
            '    failed += check_int(nan, CONC_EINVAL, "%s with NaN %s");'
            % (d.name, name)]
    if d.name not in NEGATIVE_DIFFERS:
        body += ['    failed += run_value(case_%d, "%s with %s 0", &zero);'
                 % (cid + 1, d.name, name),
                 '    failed += run_value(case_%d, "%s with %s -5", &neg);'
                 % (cid + 2, d.name, name),
                 '    failed += check_int(neg, %s, "%s with %s -5");'
                 % ('neg != CONC_EINVAL ? neg : zero'
                    if d.name in TIMING_DEPENDENT else 'zero', d.name, name)]
    body += ['    (void)zero, (void)neg;', '    assert_int_equal(failed, 0);',
             '}']
    out.append('\n'.join(body))
    return '\n\n'.join(out), cid + 3


PRELUDE = r'''/* Generated by tools/gen_null_test.py from the headers in include/conc/:
 * do not edit.
 *
 * Calls every public function with NULL for each pointer argument in turn,
 * and every one with a time with NaN, 0 and -5 there, each call in a child
 * process of its own, and checks the contract of docs/conventions.md (see
 * the generator for the rules). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"

#define ALARM_S %(alarm)d

/* Setting up a valid argument failed: not what is tested, but fatal. */
#define MUST(expr)                                                             \
    do {                                                                       \
        int must_rc_ = (expr);                                                 \
        if (must_rc_ < 0) {                                                    \
            fprintf(stderr, "setup %%s: %%s\n", #expr, conc_err_name(must_rc_)); \
            _exit(3);                                                          \
        }                                                                      \
    } while (0)

static _Alignas(64) unsigned char scratch[4096];
static char *true_argv[] = {"true", NULL};
static int item_values[1];
static const conc_items items = {item_values, sizeof item_values[0], 1, NULL,
                                 NULL};

static int
dummy_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return 0;
}

static void
dummy_aio_cb(void *arg)
{
    (void)arg;
}

static int
dummy_stream_handler(void *arg, conc_aio_stream *s)
{
    (void)arg, (void)s;
    return 0;
}

/* A TaskGroup needs a task: a task makes one (and a timeout), says so
 * through a future, and sleeps; the loop is then left stopped, so the
 * objects stay valid for the call under test. */
static conc_aio_taskgroup *made_tg;
static conc_aio_timeout *made_to;

static int
holder_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_future *ready = *(conc_future *const *)arg;
    if (conc_aio_taskgroup_new(&made_tg) < 0 ||
        conc_aio_timeout_enter(CONC_FOREVER, &made_to) < 0)
        _exit(3);
    conc_future_set_result(ready, NULL, 0);
    return conc_aio_sleep(3600);
}

static void
make_held(void)
{
    if (made_tg)
        return;
    conc_aio_loop *lp;
    conc_future *ready;
    MUST(conc_aio_loop_new(NULL, &lp));
    MUST(conc_future_new(&ready));
    MUST(conc_aio_loop_create_task(lp, holder_task, &ready, sizeof ready, NULL,
                                   NULL));
    MUST(conc_aio_loop_run_until_complete(lp, ready));
}

static conc_aio_taskgroup *
held_taskgroup(void)
{
    make_held();
    return made_tg;
}

static int
dummy_ws_handler(void *arg, conc_ws *ws)
{
    (void)arg, (void)ws;
    return 0;
}

static int
dummy_ws_producer(void *arg, conc_buf *part, int *last)
{
    (void)arg, (void)part;
    *last = 1;
    return 0;
}

/* A WebSocket connection: a task serves and connects to itself, says so
 * through a future, and sleeps; the loop is then left stopped. */
static conc_ws *made_ws;

static int
ws_holder_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_future *ready = *(conc_future *const *)arg;
    conc_aio_loop *lp;
    conc_ws_server *srv;
    char url[64];
    if (conc_aio_get_running_loop(&lp) < 0 ||
        conc_ws_serve(lp, "127.0.0.1", 0, dummy_ws_handler, NULL, NULL,
                      &srv) < 0)
        _exit(3);
    snprintf(url, sizeof url, "ws://127.0.0.1:%%d/", conc_ws_server_port(srv));
    if (conc_ws_connect(url, NULL, 10.0, &made_ws) < 0)
        _exit(3);
    conc_future_set_result(ready, NULL, 0);
    return conc_aio_sleep(3600);
}

static conc_ws *
held_ws(void)
{
    if (made_ws)
        return made_ws;
    conc_aio_loop *lp;
    conc_future *ready;
    MUST(conc_aio_loop_new(NULL, &lp));
    MUST(conc_future_new(&ready));
    MUST(conc_aio_loop_create_task(lp, ws_holder_task, &ready, sizeof ready,
                                   NULL, NULL));
    MUST(conc_aio_loop_run_until_complete(lp, ready));
    return made_ws;
}

static int
dummy_thread(void *arg)
{
    (void)arg;
    return 0;
}

static int
dummy_process(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 0;
}

static int
dummy_future_cb(void *arg, conc_future *f)
{
    (void)arg, (void)f;
    return 0;
}

static int
dummy_predicate(void *arg)
{
    (void)arg;
    return 1;
}

static void
dummy_free(void *p)
{
    (void)p;
}

static void
dummy_hook(void *arg, const conc_thread_failure *f)
{
    (void)arg, (void)f;
}

static int
check_int(int got, int want, const char *what)
{
    if (got == want)
        return 0;
    fprintf(stderr, "%%s returned %%d (%%s), expected %%s\n", what, got,
            conc_err_name(got), conc_err_name(want));
    return 1;
}

static int
check_ptr(const void *got, const char *what)
{
    if (!got)
        return 0;
    fprintf(stderr, "%%s returned %%p, expected NULL\n", what, got);
    return 1;
}

static int
check_zero(int is_zero, const char *what)
{
    if (is_zero)
        return 0;
    fprintf(stderr, "%%s returned a nonzero value, expected 0\n", what);
    return 1;
}

/* Runs one case in a child, whose exit status is the case's result.
 * Returns 0 if it passed; otherwise prints why and returns 1. */
static int
run_case(int (*fn)(void), const char *what)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka catches these to carry on with the next test: in the
         * child a crash must end the child. */
        static const int crash[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof crash / sizeof *crash; i++)
            signal(crash[i], SIG_DFL);
        alarm(ALARM_S);
        int rc = fn();
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) {
        printf("FAIL %%s: %%s\n", what,
               WTERMSIG(st) == SIGALRM ? "hung" : strsignal(WTERMSIG(st)));
        return 1;
    }
    if (WEXITSTATUS(st) != 0) {
        printf("FAIL %%s: wrong result or failed setup (status %%d)\n", what,
               WEXITSTATUS(st));
        return 1;
    }
    return 0;
}

/* Runs one case in a child and stores in *result what its call returned
 * (the child writes it into a pipe). Returns 0 if the child ended
 * normally; otherwise prints why and returns 1. */
static int
run_value(int (*fn)(void), const char *what, int *result)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static const int crash[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof crash / sizeof *crash; i++)
            signal(crash[i], SIG_DFL);
        close(fds[0]);
        alarm(ALARM_S);
        int rc = fn();
        ssize_t w = write(fds[1], &rc, sizeof rc);
        _exit(w == (ssize_t)sizeof rc ? 0 : 4);
    }
    close(fds[1]);
    *result = 1; /* no conc code: a case that died compares unequal */
    ssize_t got = read(fds[0], result, sizeof *result);
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) {
        printf("FAIL %%s: %%s\n", what,
               WTERMSIG(st) == SIGALRM ? "hung" : strsignal(WTERMSIG(st)));
        return 1;
    }
    if (WEXITSTATUS(st) != 0 || got != (ssize_t)sizeof *result) {
        printf("FAIL %%s: failed setup (status %%d)\n", what, WEXITSTATUS(st));
        return 1;
    }
    return 0;
}
'''


def generate(include_dir):
    decls = conc_api.parse_all(include_dir)
    out = [PRELUDE % {'alarm': ALARM_S}]
    tests = []
    cid = 0
    known = set(CONSTRUCTORS) | {t for t in VALUES}
    fn_types = conc_api.function_pointer_types(include_dir)
    for d in decls:
        ptrs = [i for i, p in enumerate(d.params)
                if p.is_pointer or p.type in fn_types]
        if not ptrs:
            continue
        cases = []
        for i in ptrs:
            cid += 1
            out.append(gen_case(d, i, cid))
            cases.append((cid, '%s with NULL %s' % (d.name, d.params[i].name)))
        body = ['static void', 'test_%s(void **state)' % d.name, '{',
                '    (void)state;', '    int failed = 0;']
        for c, what in cases:
            body.append('    failed += run_case(case_%d, "%s");' % (c, what))
        body.append('    assert_int_equal(failed, 0);')
        body.append('}')
        out.append('\n'.join(body))
        tests.append(d.name)
    for d in decls:
        idx = time_param(d)
        if idx is None:
            continue
        code, cid = gen_time_test(d, idx, cid + 1)
        out.append(code)
        tests.append('%s_%s' % (d.name, d.params[idx].name))
    keys = list(NULLABLE) + list(OVERRIDES)
    keys += [(n,) for n in NEGATIVE_DIFFERS | TIMING_DEPENDENT]
    for key in keys:
        if key[0] not in {d.name for d in decls}:
            raise conc_api.ParseError('tools/gen_null_test.py names %s, which '
                                      'no header declares' % key[0])
    main = ['int', 'main(void)', '{', '    const struct CMUnitTest tests[] = {']
    for t in tests:
        main.append('        cmocka_unit_test(test_%s),' % t)
    main += ['    };', '    return cmocka_run_group_tests(tests, NULL, NULL);',
             '}', '']
    out.append('\n'.join(main))
    del known
    return '\n\n'.join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        text = generate(sys.argv[1])
    except conc_api.ParseError as e:
        sys.exit('gen_null_test.py: %s' % e)
    tmp = sys.argv[2] + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, sys.argv[2])


if __name__ == '__main__':
    main()
