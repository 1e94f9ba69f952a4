/* Fuzzes the parent's reader of result frames, conc__res_decode and
 * conc__res_advance (src/executor/frames.c): what a process pool's worker
 * writes back, one result in one or several frames. The input is a run of
 * frames, each a 32-bit payload length and its header's bytes. An
 * independent model of the stream checks every verdict: an accepted frame
 * lies inside its length, a result never takes more bytes than it
 * announced, continuations belong to the result in progress, and the
 * decoder reads no byte of the header past the frame. */
#include "conc/error.h"
#include "executor/frames.h"
#include "fuzz.h"

#define HDR sizeof(struct conc__res_hdr)

/* Checks an accepted frame against the model of the stream. */
static void
check_accepted(const struct conc__res_stream *st, uint64_t len,
               const struct conc__res_frame *fr)
{
    FUZZ_CHECK(len >= HDR && fr->msglen <= CONC__RES_MSG_MAX);
    FUZZ_CHECK(fr->msg_off == HDR && fr->data_off == HDR + fr->msglen);
    FUZZ_CHECK(fr->data_off + fr->piece == len);
    if (fr->init)
        return;
    const struct conc__res_hdr *h = &fr->h;
    if (fr->first) {
        FUZZ_CHECK(st->seq == 0 && h->seq != 0 && fr->piece <= h->total);
        FUZZ_CHECK((h->flags & CONC__RES_MORE) || fr->piece == h->total);
        FUZZ_CHECK(fr->last == (fr->piece == h->total));
        return;
    }
    FUZZ_CHECK(st->seq != 0 && h->seq == st->seq && fr->piece > 0);
    FUZZ_CHECK(fr->piece <= st->total - st->got);
    FUZZ_CHECK(fr->last == (fr->piece == st->total - st->got));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct conc__res_stream st = {0};
    for (int frames = 0; !fuzz_done(&in) && frames < 256; frames++) {
        uint64_t len = fuzz_take(&in, 4);
        size_t n = len < HDR ? (size_t)len : HDR;
        uint8_t *hdr = malloc(n ? n : 1); /* exact: overreads hit a redzone */
        FUZZ_CHECK(hdr);
        for (size_t i = 0; i < n; i++)
            hdr[i] = (uint8_t)fuzz_take(&in, 1);
        struct conc__res_frame fr;
        const char *why = NULL;
        int r = conc__res_decode(&st, hdr, len, &fr, &why);
        free(hdr);
        if (r < 0) {
            FUZZ_CHECK(r == CONC_EPROTO && why && *why);
            continue;
        }
        FUZZ_CHECK(r == 0);
        check_accepted(&st, len, &fr);
        if (fr.init)
            continue;
        struct conc__res_stream before = st;
        conc__res_advance(&st, &fr);
        if (fr.last) {
            FUZZ_CHECK(st.seq == 0 && st.got == 0 && st.total == 0);
        } else {
            FUZZ_CHECK(st.seq == fr.h.seq && st.got < st.total);
            FUZZ_CHECK(st.got == (fr.first ? 0 : before.got) + fr.piece);
        }
    }
    return 0;
}
