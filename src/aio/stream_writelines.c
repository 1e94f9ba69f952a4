/* StreamWriter.writelines: several buffers queued as one write, so that
 * the write limit applies to the whole and a refusal queues nothing. */
#include "aio/stream.h"

int
conc_aio_stream_writelines(conc_aio_stream *s, const conc_buf *parts, size_t n)
{
    if (!s || (!parts && n))
        return CONC_EINVAL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += parts[i].len;
    if (s->wbuf.len && s->wbuf.len + total > s->write_limit)
        return conc_fail(CONC_EFULL,
                         "the write buffer holds %zu bytes: drain first",
                         s->wbuf.len);
    /* Past the first write the buffer is not empty, and the check above
     * already admitted the rest: lift the limit for the calls below. */
    size_t limit = s->write_limit;
    s->write_limit = SIZE_MAX;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        if (parts[i].len)
            r = conc_aio_stream_write(s, parts[i].data, parts[i].len);
    s->write_limit = limit;
    return r;
}
