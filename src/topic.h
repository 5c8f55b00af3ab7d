/* topic: AMQP topic patterns over event types (the routing keys Bloodbank
 * publishes with): words joined by dots, `*` one word, `#` zero or more.
 * Pure: `tail` binds with them, `replay` selects with them. */
#ifndef BB_TOPIC_H
#define BB_TOPIC_H

#include <stdbool.h>

/* 1-255 bytes of words joined by single dots, each `*`, `#`, or the
 * characters of an event type ([a-z0-9_-]). */
bool bb_topic_pattern_valid(const char *pattern);

/* Whether routing key key matches a valid pattern, as a topic exchange
 * routes it. */
bool bb_topic_match(const char *pattern, const char *key);

#endif
