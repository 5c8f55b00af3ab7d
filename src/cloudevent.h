/* cloudevent: the attributes of a CloudEvents 1.0 event (CONTRACT §9.1)
 * as they arrive -- the members of a structured event, or the ce- headers
 * of a binary one -- checked, bounded, and kept for the document that is
 * published (§9.2, §9.3). Pure: no I/O. */
#ifndef BB_CLOUDEVENT_H
#define BB_CLOUDEVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http.h"
#include "json.h"

/* The media types of the structured and batched modes (§9.1). */
#define BB_CLOUDEVENTS_TYPE "application/cloudevents+json"
#define BB_CLOUDEVENTS_BATCH_TYPE "application/cloudevents-batch+json"

/* The longest attribute value taken, in bytes (after unescaping or
 * percent-decoding). */
#define BB_CE_MAX_VALUE 4096
/* Extensions taken on one event. */
#define BB_CE_MAX_EXTENSIONS 32

/* The attributes Bloodbank reads itself. */
enum bb_ce_attribute {
	BB_CE_ID,
	BB_CE_SOURCE,
	BB_CE_TYPE,
	BB_CE_SUBJECT,
	BB_CE_TIME,
	BB_CE_DATACONTENTTYPE,
	BB_CE_DATASCHEMA,
	BB_CE_CAUSATIONID,	/* extension: the parents (§9.1) */
	BB_CE_TRACEPARENT,	/* extensions: the trace context (§5) */
	BB_CE_TRACESTATE,
	BB_CE_NATTRIBUTES,
};

struct bb_cloudevent {
	struct bb_buf strings;	/* attribute values, each NUL-terminated */
	size_t at[BB_CE_NATTRIBUTES];	/* offset + 1 in strings; 0: absent */
	int data;		/* structured mode: the token of data, or -1 */
	int data_base64;	/* the token of data_base64, or -1 */
	int nextensions;
	/* What is kept as sent, as JSON object members (no braces): for the
	 * published CloudEvent (§9.3: id, source, subject, dataschema,
	 * datacontenttype and the extensions but the three Bloodbank writes
	 * itself), and for the native envelope's source.meta (§9.2: id,
	 * subject, time, dataschema and every extension). */
	struct bb_buf kept;
	struct bb_buf meta;
};

void bb_cloudevent_init(struct bb_cloudevent *ce);
void bb_cloudevent_free(struct bb_cloudevent *ce);

/* Reads structured event obj of doc. Returns the number of problems, each
 * appended to errors as a {"field","message"} entry naming the attribute;
 * 0 when the event is valid. */
int bb_cloudevent_from_json(struct bb_cloudevent *ce,
    const struct bb_json *doc, int obj, struct bb_buf *errors);

/* Reads a binary event's ce- headers (req->ce) and its Content-Type (the
 * datacontenttype). Returns -1 with the reason in why for a header that
 * is not percent-encoded UTF-8 (a 400), else the number of problems as
 * bb_cloudevent_from_json does. */
int bb_cloudevent_from_headers(struct bb_cloudevent *ce,
    const struct bb_request *req, struct bb_buf *errors, char *why,
    size_t whylen);

/* An attribute's value, or NULL when absent. */
const char *bb_cloudevent_get(const struct bb_cloudevent *ce,
    enum bb_ce_attribute a);

/* True when the event's data is JSON: datacontenttype absent,
 * application/json, or any type with a +json suffix (§9.1). */
bool bb_cloudevent_data_is_json(const struct bb_cloudevent *ce);

#endif
