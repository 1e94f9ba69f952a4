/* The "list" typeid's methods beyond list_type.c's: insert, reverse and
 * the operators ListProxy exposes (__add__, __mul__, __rmul__, __imul__,
 * __reversed__), each a conc_manager_method over a conc__mgr_box, and
 * slices (list_slice.c). */
#ifndef CONC_MANAGER_LIST_OPS_H
#define CONC_MANAGER_LIST_OPS_H

#include "manager/slice.h"
#include "manager/sync_types.h"

int conc__mgr_list_insert(void *self, conc_obj *args, conc_obj *kwds,
                          conc_obj **result);
int conc__mgr_list_reverse(void *self, conc_obj *args, conc_obj *kwds,
                           conc_obj **result);
int conc__mgr_list_add(void *self, conc_obj *args, conc_obj *kwds,
                       conc_obj **result);
int conc__mgr_list_mul(void *self, conc_obj *args, conc_obj *kwds,
                       conc_obj **result);
int conc__mgr_list_imul(void *self, conc_obj *args, conc_obj *kwds,
                        conc_obj **result);
int conc__mgr_list_reversed(void *self, conc_obj *args, conc_obj *kwds,
                            conc_obj **result);

/* sort(key=None, reverse=False) (list_sort.c). */
int conc__mgr_list_sort(void *self, conc_obj *args, conc_obj *kwds,
                        conc_obj **result);

/* list[sl] as a new list in *result. The caller holds the lock. */
int conc__mgr_list_slice_get(conc_obj *list, conc_obj *sl, conc_obj **result);

/* b's list[sl] = v's items, or del list[sl] for a NULL v; b->v may be
 * replaced by a new list. The caller holds b's lock. Returns 0,
 * CONC_ETYPE for a v that is not iterable, CONC_EVALUE for an extended
 * slice given another number of items, CONC_ENOMEM. */
int conc__mgr_list_slice_set(struct conc__mgr_box *b, conc_obj *sl,
                             conc_obj *v);

#endif
