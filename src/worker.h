/* worker: one FastCGI responder process -- libfcgi's accept loop around
 * the application, with a graceful stop on SIGTERM/SIGINT. */
#ifndef BB_WORKER_H
#define BB_WORKER_H

/* Loads the configuration and serves requests from listen_fd until told
 * to stop. When ready_fd >= 0, one byte is written to it (and it is closed)
 * once the worker is ready to accept. Returns the process exit status. */
int bb_worker_run(int listen_fd, int ready_fd);

#endif
