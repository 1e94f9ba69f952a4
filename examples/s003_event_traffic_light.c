/* s003_event_traffic_light: seed 003, Event (红绿灯例子).
 *
 * The Python runs a traffic light and three cars on one threading.Event:
 * the lighter sets the event for green and clears it for red, a tick a
 * second (green while count is 0-5 and 10, red from 6 to 9, green again at
 * 11 when the count restarts); each car drives ("running.....") every 0.5 s
 * while the event is set, and otherwise says it stops and waits on the
 * event. conc_event is the Event, with set, clear, is_set and wait.
 *
 * The seed runs forever; here the light stops after 14 ticks, a full cycle
 * and two more, then sets a second event, `closing`, and turns green once
 * more so that cars waiting at the red light wake up, see `closing` and go
 * home; main joins everyone. The seed's seconds are 20 ms here, and its
 * colours (ANSI escapes) are kept.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TICKS 14
#define N_CARS  3

static conc_event *event;   /* set: green light */
static conc_event *closing; /* set: the demo is over */

static int
lighter(void *arg)
{
    (void)arg;
    conc_event_set(event);
    int count = 0;
    for (int tick = 0; tick < N_TICKS; tick++) {
        if (count > 5 && count < 10) {
            conc_event_clear(event);
            printf("\033[41;1m红灯亮....\033[0m\n");
        } else if (count > 10) {
            conc_event_set(event);
            printf("\033[42;1m绿灯亮了....\033[0m\n");
            count = 0;
        } else {
            printf("\033[42;1m绿灯亮着\033[0m\n");
        }
        check(conc_sleep(SECOND), "conc_sleep");
        count += 1;
    }
    conc_event_set(closing);
    conc_event_set(event);
    return 0;
}

static int
car(void *arg)
{
    const char *n = arg;
    while (!conc_event_is_set(closing)) {
        if (conc_event_is_set(event)) {
            printf("\033[34;2m[%s] running..... \033[0m\n", n);
            check(conc_sleep(0.5 * SECOND), "conc_sleep");
        } else {
            printf("[%s] stoping.....\n", n);
            check(conc_event_wait(event, CONC_FOREVER), "conc_event_wait");
            printf("路灯亮了[%s]开跑\n", n);
        }
    }
    return 0;
}

static void
join(conc_thread *t)
{
    int status;
    check(conc_thread_join(t, CONC_FOREVER, &status), "conc_thread_join");
    check(status, conc_thread_name(t));
    conc_thread_free(t);
}

int
main(void)
{
    static const char *const cars[N_CARS] = {"宝马", "大奔驰", "玛莎拉蒂"};
    check(conc_event_new(NULL, &event), "conc_event_new");
    check(conc_event_new(NULL, &closing), "conc_event_new");

    conc_thread *light, *car_threads[N_CARS];
    check(conc_thread_start(lighter, NULL, NULL, &light), "conc_thread_start");
    for (int i = 0; i < N_CARS; i++)
        check(conc_thread_start(car, (void *)cars[i], NULL, &car_threads[i]),
              "conc_thread_start");
    join(light);
    for (int i = 0; i < N_CARS; i++)
        join(car_threads[i]);

    conc_event_free(closing);
    conc_event_free(event);
    return 0;
}
