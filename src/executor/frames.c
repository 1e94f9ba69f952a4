/* Decoding the frames between a process pool and its workers (frames.h).
 * Nothing here trusts a length or a position: every one is compared with
 * what is left before it is used, and sums are formed only after the
 * comparison that keeps them from wrapping. */
#include <stdio.h>
#include <string.h>

#include "conc/error.h"
#include "executor/frames.h"

/* Fails a result frame. */
static int
bad(const char **why, const char *what)
{
    *why = what;
    return CONC_EPROTO;
}

/* Checks the bytes of a result's frame against what its result announced
 * and what has come of it. */
static int
check_piece(const struct conc__res_stream *st, struct conc__res_frame *fr,
            const char **why)
{
    const struct conc__res_hdr *h = &fr->h;
    if (fr->first) {
        if (st->seq)
            return bad(why, "a new result before the last one's end");
        if (h->seq == 0)
            return bad(why, "a result for no task");
        if (fr->piece > h->total)
            return bad(why, "more bytes than the result announced");
        if (!(h->flags & CONC__RES_MORE) && fr->piece != h->total)
            return bad(why, "fewer bytes than the result announced");
        fr->last = fr->piece == h->total;
        return 0;
    }
    if (!st->seq || h->seq != st->seq)
        return bad(why, "a continuation of no result");
    if (fr->piece == 0)
        return bad(why, "an empty continuation");
    if (fr->piece > st->total - st->got)
        return bad(why, "more bytes than the result announced");
    fr->last = fr->piece == st->total - st->got;
    return 0;
}

int
conc__res_decode(const struct conc__res_stream *st, const void *hdr,
                 uint64_t len, struct conc__res_frame *out, const char **why)
{
    struct conc__res_frame fr = {0};
    if (len < sizeof fr.h)
        return bad(why, "a frame shorter than its header");
    memcpy(&fr.h, hdr, sizeof fr.h);
    uint64_t left = len - sizeof fr.h;
    if (fr.h.msglen > CONC__RES_MSG_MAX || fr.h.msglen > left)
        return bad(why, "a message longer than its frame");
    fr.msg_off = sizeof fr.h;
    fr.msglen = fr.h.msglen;
    fr.data_off = fr.msg_off + fr.msglen;
    fr.piece = (size_t)(left - fr.h.msglen);
    if (fr.h.flags & CONC__RES_INIT) {
        fr.init = 1;
        *out = fr;
        return 0;
    }
    fr.first = !(fr.h.flags & CONC__RES_CONT);
    int r = check_piece(st, &fr, why);
    if (r == 0)
        *out = fr;
    return r;
}

void
conc__res_advance(struct conc__res_stream *st, const struct conc__res_frame *fr)
{
    if (fr->first) {
        st->seq = fr->h.seq;
        st->total = fr->h.total;
        st->got = 0;
    }
    st->got += fr->piece;
    if (fr->last)
        *st = (struct conc__res_stream){0};
}

int
conc__task_check(const void *hdr, int64_t len, uint64_t due,
                 uint64_t arena_size, struct conc__task_hdr *h, char *why,
                 size_t size)
{
    if (len < (int64_t)sizeof *h || (uint64_t)len > CONC__TASK_FRAME_MAX) {
        snprintf(why, size, "a task frame of %lld bytes", (long long)len);
        return CONC_EPROTO;
    }
    memcpy(h, hdr, sizeof *h);
    if (h->flags & CONC__TASK_EXIT)
        return 0;
    int arena = (h->flags & CONC__TASK_ARENA) != 0;
    uint64_t inline_len = (uint64_t)len - sizeof *h;
    if (h->wseq != due)
        snprintf(why, size, "task frame number %llu where %llu was due",
                 (unsigned long long)h->wseq, (unsigned long long)due);
    else if ((arena ? inline_len != 0 : h->len != inline_len) ||
             (h->flags & ~(uint32_t)(CONC__TASK_FD | CONC__TASK_ARENA)))
        snprintf(why, size,
                 "task %llu's frame of %lld bytes does not fit its header",
                 (unsigned long long)h->wseq, (long long)len);
    else if (arena && (h->len > arena_size || h->arena_off == 0 ||
                       h->arena_off > arena_size - h->len))
        snprintf(why, size, "task %llu's argument lies outside the arena",
                 (unsigned long long)h->wseq);
    else
        return 1;
    return CONC_EPROTO;
}
