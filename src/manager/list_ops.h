/* The "list" typeid's methods beyond list_type.c's: insert, reverse and
 * the operators ListProxy exposes (__add__, __mul__, __rmul__, __imul__,
 * __reversed__), each a conc_manager_method over a conc__mgr_box. */
#ifndef CONC_MANAGER_LIST_OPS_H
#define CONC_MANAGER_LIST_OPS_H

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

#endif
