/* ceiling: the broker's own limit for what Bloodbank does per request --
 * one persistent, envelope-sized message with the same properties, published
 * mandatory with librabbitmq, waiting for its confirm before the next --
 * from N processes at once. With BATCH > 1, each process publishes BATCH
 * messages back to back and then awaits their confirms, as a batch request
 * does.
 *
 * usage: ceiling AMQP_URL EXCHANGE ROUTING_KEY PROCS SECONDS BYTES [BATCH]
 * Prints: procs=N batch=B messages=M seconds=S rate=R (messages/s)
 *         p50_ms=X p99_ms=Y (per batch) cpu_us_per_msg=C (the publishers') */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "ceiling: %s\n", what);
	exit(1);
}

static void
check(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die(what);
}

/* One worker: publish until the deadline, writing each latency (seconds,
 * as a double) to fd. */
static void
publisher(const char *url, const char *exchange, const char *key,
    double seconds, size_t bytes, int batch, int fd)
{
	struct amqp_connection_info ci;
	char *copy = strdup(url);
	char *body = malloc(bytes);
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	amqp_basic_properties_t props;
	uint64_t tag = 0;

	memset(body, 'x', bytes);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
		die("bad URL");
	if (amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK)
		die("connect");
	check(amqp_login(conn, ci.vhost[0] ? ci.vhost : "/", 0, 131072, 0,
	    AMQP_SASL_METHOD_PLAIN,
	    ci.user, ci.password), "login");
	amqp_channel_open(conn, 1);
	check(amqp_get_rpc_reply(conn), "channel");
	amqp_confirm_select(conn, 1);
	check(amqp_get_rpc_reply(conn), "confirm.select");
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
	    AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.content_encoding = amqp_cstring_bytes("utf-8");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.message_id = amqp_cstring_bytes("5c3d0a4e-2f57-4d8b-9a43-0d7c1f0b5e21");
	props.timestamp = (uint64_t)time(NULL);
	props.type = amqp_cstring_bytes(key);
	props.app_id = amqp_cstring_bytes("bloodbank");

	double end = now() + seconds;
	while (now() < end) {
		double t0 = now();
		amqp_bytes_t b = { bytes, body };
		for (int k = 0; k < batch; k++) {
			if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange),
			    amqp_cstring_bytes(key), 1, 0, &props, b) !=
			    AMQP_STATUS_OK)
				die("publish");
			tag++;
		}
		/* the last message's ack, or a multiple ack covering it */
		for (;;) {
			amqp_frame_t f;
			if (amqp_simple_wait_frame(conn, &f) != AMQP_STATUS_OK)
				die("wait");
			if (f.frame_type == AMQP_FRAME_METHOD &&
			    f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
				amqp_basic_ack_t *ack = f.payload.method.decoded;
				amqp_maybe_release_buffers(conn);
				if (ack->delivery_tag >= tag)
					break;
				continue;
			}
			if (f.frame_type == AMQP_FRAME_METHOD)
				die("unexpected method (nack or close)");
		}
		double dt = now() - t0;
		if (write(fd, &dt, sizeof(dt)) != sizeof(dt))
			die("pipe");
	}
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(body);
	free(copy);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	int fds[2];
	int procs;
	double seconds, t0;
	size_t n = 0, cap = 1 << 16;
	double *lat = malloc(cap * sizeof(double));
	double v;

	if (argc != 7 && argc != 8)
		die("usage: ceiling AMQP_URL EXCHANGE ROUTING_KEY PROCS SECONDS "
		    "BYTES [BATCH]");
	procs = atoi(argv[4]);
	seconds = atof(argv[5]);
	int batch = argc == 8 ? atoi(argv[7]) : 1;
	if (batch < 1)
		die("BATCH must be at least 1");
	if (pipe(fds) != 0)
		die("pipe");
	t0 = now();
	for (int k = 0; k < procs; k++) {
		if (fork() == 0) {
			close(fds[0]);
			publisher(argv[1], argv[2], argv[3], seconds,
			    (size_t)atol(argv[6]), batch, fds[1]);
			_exit(0);
		}
	}
	close(fds[1]);
	while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
		if (n == cap)
			lat = realloc(lat, (cap *= 2) * sizeof(double));
		lat[n++] = v;
	}
	double elapsed = now() - t0;
	int status, failed = 0;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	if (failed || n == 0)
		die("a publisher failed");
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	size_t messages = n * (size_t)batch;
	qsort(lat, n, sizeof(double), cmp);
	printf("procs=%d batch=%d messages=%zu seconds=%.1f rate=%.0f "
	    "p50_ms=%.2f p99_ms=%.2f cpu_us_per_msg=%.1f\n", procs, batch,
	    messages, elapsed, (double)messages / elapsed, lat[n / 2] * 1e3,
	    lat[n * 99 / 100] * 1e3, cpu / (double)messages);
	free(lat);
	return 0;
}
