/* The raw C twin of the stream benchmarks: a TCP echo of EE_MSG-byte
 * messages written by hand over plain epoll, without conc, as the fastest
 * a stream layer could hope to be. */
#ifndef EPOLL_ECHO_H
#define EPOLL_ECHO_H

#define EE_MSG       1024
#define EE_MAX_CONNS 1000

/* About n round trips of EE_MSG bytes over `conns` loopback connections
 * (n is rounded down to a multiple of conns, at least one each); *ops
 * receives the count done. threads 0: one thread runs the server's and
 * the clients' ends on one epoll. threads N: N server threads, each with
 * its own epoll and listening socket on one port (SO_REUSEPORT), and N
 * client threads sharing the connections. Returns the seconds the round
 * trips took (connection setup excluded). Exits the process on a system
 * error. */
double epoll_echo_run(int conns, int threads, long n, long *ops);

#endif
