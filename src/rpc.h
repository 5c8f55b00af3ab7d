/* rpc: what every synchronous AMQP RPC of a connect needs -- its share of
 * the connect budget, a failure described for the log (never with
 * credentials), and the table entries of arguments. */
#ifndef BB_RPC_H
#define BB_RPC_H

#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>

/* True when r is a normal reply; otherwise logs why `what` failed. */
bool bb_rpc_ok(amqp_rpc_reply_t r, const char *what);
/* Gives the next RPC what is left until deadline (monotonic ms). */
void bb_rpc_budget(amqp_connection_state_t conn, long long deadline);
/* A table entry named key of the given kind, its value to be filled in. */
amqp_table_entry_t bb_amqp_entry(const char *key, uint8_t kind);

#endif
