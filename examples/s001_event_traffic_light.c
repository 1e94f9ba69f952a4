/* s001_event_traffic_light: seed 001, 事件 (Event), 红绿灯 with processes.
 *
 * The Python makes a multiprocessing.Event and ten car processes: a car
 * that finds the light red (event clear) prints '红灯亮,carN等着', waits on
 * the event, prints '车N 看见绿灯亮了', drives 2 to 4 seconds, and leaves
 * ('车开远了,car N') if the light is still green, else starts over. A
 * traffic light process flips the event every 5 seconds for ever, printing
 * '###### True' before it turns red and '*********** True' once green; main
 * prints '预备~~~~开始!!!' after starting it. The conc_event is created in
 * the shared arena, so every process sees the same light.
 *
 * Differences, to make the demo end and stay short: a second is 20 ms; the
 * cars arrive (1 + i % 3) s apart instead of the seed's
 * random.random(1, 3), which Python would reject; they drive
 * (2 + i % 3) s instead of a random time; a car that arrives at a green
 * light, where the seed's loop spins until red, naps 1 ms per turn. The
 * seed's light runs for ever and keeps its program alive; here main joins
 * the cars, then ends the light with terminate() (exit code -15, checked).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */
#define N_CARS 10

static conc_event *e; /* set: green light; process-shared */

/* Process(target=fn, args=...) followed by start(). */
static conc_process *
start(conc_process_fn fn, const void *arg, size_t len,
      const conc_process_opts *opts)
{
    conc_process *p;
    check(conc_process_new(fn, arg, len, opts, &p), "conc_process_new");
    check(conc_process_start(p), "conc_process_start");
    return p;
}

/* p.join(), then makes sure the child ended well (exitcode 0). */
static void
join(conc_process *p)
{
    check(conc_process_join(p, CONC_FOREVER), "conc_process_join");
    int code = 0;
    int rc = conc_process_exitcode(p, &code);
    check(rc < 0 ? rc : 0, "conc_process_exitcode");
    if (code != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: exitcode %d\n", conc_process_name(p), code);
        _Exit(EXIT_FAILURE);
    }
    conc_process_free(p);
}

static int
car(const void *arg, size_t len)
{
    (void)len;
    int n = *(const int *)arg;
    for (;;) {
        if (conc_event_is_set(e)) {
            check(conc_sleep(SECOND / 20), "conc_sleep");
            continue;
        }
        printf("\033[31m红灯亮\033[0m,car%d等着\n", n);
        check(conc_event_wait(e, CONC_FOREVER), "conc_event_wait");
        printf("\033[32m车%d 看见绿灯亮了\033[0m\n", n);
        check(conc_sleep((2 + n % 3) * SECOND), "conc_sleep");
        if (!conc_event_is_set(e))
            continue;
        printf("车开远了,car %d\n", n);
        return 0;
    }
}

static int
traffic_lights(const void *arg, size_t len)
{
    (void)len;
    double interval = *(const double *)arg;
    int rc; /* the loop ends only if a sleep fails */
    while ((rc = conc_sleep(interval)) == 0) {
        if (conc_event_is_set(e)) {
            printf("###### True\n");
            conc_event_clear(e);
        } else {
            conc_event_set(e);
            printf("*********** True\n");
        }
    }
    check(rc, "conc_sleep");
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    conc_sync_opts shared = {.arena = arena};
    check(conc_event_new(&shared, &e), "conc_event_new");
    conc_process *cars[N_CARS];
    for (int i = 0; i < N_CARS; i++) {
        conc_process *p;
        check(conc_process_new(car, &i, sizeof i, NULL, &p),
              "conc_process_new");
        check(conc_sleep((1 + i % 3) * SECOND), "conc_sleep");
        check(conc_process_start(p), "conc_process_start");
        cars[i] = p;
    }
    double interval = 5 * SECOND;
    conc_process *t = start(traffic_lights, &interval, sizeof interval, NULL);
    printf("预备~~~~开始!!!\n");
    for (int i = 0; i < N_CARS; i++)
        join(cars[i]);
    check(conc_process_terminate(t), "conc_process_terminate");
    check(conc_process_join(t, CONC_FOREVER), "conc_process_join");
    int code = 0;
    check(conc_process_exitcode(t, &code) == 1 && code == -SIGTERM
              ? 0
              : CONC_EPROCESS,
          "the light's exit code");
    conc_process_free(t);
    conc_event_free(e);
    return 0;
}
