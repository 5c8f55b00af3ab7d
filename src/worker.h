/* worker: one FastCGI responder process -- libfcgi's accept loop around
 * the application, with a graceful stop on SIGTERM/SIGINT. */
#ifndef BB_WORKER_H
#define BB_WORKER_H

/* A worker asked to stop (SIGTERM) is killed this long after by whoever
 * asked: the master, on a reload or a stop. The worker finishes what is in
 * flight and takes queued connections only while a whole request (connect
 * + confirm budget + 1 s) still fits a second before then. The systemd
 * unit's TimeoutStopSec is longer. */
#define BB_STOP_SECONDS 10

/* Loads the configuration and serves requests from listen_fd until told
 * to stop. When ready_fd >= 0, one byte is written to it (and it is closed)
 * once the worker is ready to accept. Returns the process exit status. */
int bb_worker_run(int listen_fd, int ready_fd);

#endif
