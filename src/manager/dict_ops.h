/* The "dict" typeid's methods beyond dict_type.c's: __iter__, which
 * answers with an iterator object (dict_iter.c), and 3.14's __or__,
 * __ror__, __ior__, __reversed__ and fromkeys (dict_ops.c), each over a
 * conc__mgr_box holding the dict. */
#ifndef CONC_MANAGER_DICT_OPS_H
#define CONC_MANAGER_DICT_OPS_H

#include "manager/sync_types.h"

/* __iter__ (method_to_typeid 'Iterator'): a new iterator over the box's
 * dict, which holds a reference to the box, for the server to take. */
int conc__mgr_dict_iter(void *self, conc_obj *args, conc_obj *kwds, void **obj,
                        int *borrowed);

/* The checks of a slot wrapper such as __or__ or __next__: `n`
 * positional arguments and no keywords, with CPython's texts. */
int conc__mgr_wrapper_args(conc_obj *args, conc_obj *kwds, const char *name,
                           size_t n);

/* dict.update's merge of `from` into dict d: a dict's items, or the
 * pairs an iterable that travels gives (each itself an iterable of two
 * items), with CPython's errors; the pairs before a bad one stay merged,
 * as in CPython. The caller holds the lock d is behind. */
int conc__mgr_dict_merge(conc_obj *d, conc_obj *from);

int conc__mgr_dict_or(void *self, conc_obj *args, conc_obj *kwds,
                      conc_obj **result);
int conc__mgr_dict_ror(void *self, conc_obj *args, conc_obj *kwds,
                       conc_obj **result);
int conc__mgr_dict_ior(void *self, conc_obj *args, conc_obj *kwds,
                       conc_obj **result);
int conc__mgr_dict_reversed(void *self, conc_obj *args, conc_obj *kwds,
                            conc_obj **result);
int conc__mgr_dict_fromkeys(void *self, conc_obj *args, conc_obj *kwds,
                            conc_obj **result);

#endif
