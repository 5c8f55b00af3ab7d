/* debug: the correlation endpoints (CONTRACT §4.7, §4.8). */
#ifndef BB_DEBUG_H
#define BB_DEBUG_H

#include "http.h"
#include "tracker.h"

/* Answers GET /debug/correlation/{id} or its /chain. */
void bb_debug_handle(struct bb_tracker *t, const struct bb_match *m,
    const char *query, struct bb_response *resp);

#endif
