/* Python's Connection.send and recv: conc_obj values pickled into one
 * message each (conc/listener.h), on any conc_conn. */
#include "conc/listener.h"
#include "core/internal.h"

int
conc_conn_send_obj(conc_conn *c, const conc_obj *o, double timeout)
{
    if (!c || !o)
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    int rc = conc_obj_dumps(o, &b);
    if (rc == 0)
        rc = conc_conn_send_bytes(c, b.data, b.len, timeout);
    conc_buf_free(&b);
    return rc;
}

int
conc_conn_recv_obj(conc_conn *c, double timeout, conc_obj **out)
{
    if (!c || !out)
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    int rc = conc_conn_recv_bytes(c, timeout, &b);
    if (rc == 0)
        rc = conc_obj_loads(b.data, b.len, NULL, out, NULL);
    conc_buf_free(&b);
    return rc;
}
