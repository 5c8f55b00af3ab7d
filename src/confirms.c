#include "confirms.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* A slot whose message was settled or given up on has p == NULL. */
struct bb_confirm_slot {
	uint64_t tag;
	struct bb_publish *p;
};

void
bb_confirms_init(struct bb_confirms *c)
{
	c->head = c->len = 0;
	c->next_tag = 1;	/* confirm.select starts counting at 1 */
}

void
bb_confirms_free(struct bb_confirms *c)
{
	free(c->slots);
	c->slots = NULL;
	c->cap = 0;
	bb_confirms_init(c);
}

void
bb_confirms_add(struct bb_confirms *c, struct bb_publish *p)
{
	if (c->len == c->cap) {
		if (c->head > 0) {
			memmove(c->slots, c->slots + c->head,
			    (c->len - c->head) * sizeof(*c->slots));
			c->len -= c->head;
			c->head = 0;
		} else {
			c->cap = c->cap ? c->cap * 2 : 16;
			c->slots = bb_xreallocarray(c->slots, c->cap,
			    sizeof(*c->slots));
		}
	}
	p->tag = c->next_tag++;
	p->result = BB_PUBLISH_PENDING;
	c->slots[c->len].tag = p->tag;
	c->slots[c->len].p = p;
	c->len++;
}

/* The waiting slot of `tag`, by binary search. */
static struct bb_confirm_slot *
find(struct bb_confirms *c, uint64_t tag)
{
	size_t lo = c->head, hi = c->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->slots[mid].tag == tag)
			return &c->slots[mid];
		if (c->slots[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
drop_settled(struct bb_confirms *c)
{
	while (c->head < c->len && c->slots[c->head].p == NULL)
		c->head++;
	if (c->head == c->len)
		c->head = c->len = 0;
}

static void
settle(struct bb_confirm_slot *s, bool ack)
{
	struct bb_publish *p = s->p;

	if (p == NULL)
		return;	/* answered already (504); a late confirm changes nothing */
	if (!ack)
		p->result = BB_PUBLISH_NACKED;
	else
		p->result = p->returned ? BB_PUBLISH_UNROUTABLE : BB_PUBLISH_OK;
	s->p = NULL;
}

int
bb_confirms_settle(struct bb_confirms *c, uint64_t tag, bool multiple,
    bool ack)
{
	if (tag >= c->next_tag)
		return -1;
	if (multiple) {
		if (tag == 0)	/* AMQP 0-9-1: every outstanding one */
			tag = c->next_tag - 1;
		for (size_t k = c->head; k < c->len && c->slots[k].tag <= tag; k++)
			settle(&c->slots[k], ack);
	} else {
		struct bb_confirm_slot *s = find(c, tag);
		if (s)
			settle(s, ack);
	}
	drop_settled(c);
	return 0;
}

/* A basic.return carries no delivery tag: its message is known by its
 * message_id. It comes before the message's ack. */
void
bb_confirms_returned(struct bb_confirms *c, const char *message_id,
    size_t len)
{
	for (size_t k = c->head; k < c->len; k++) {
		struct bb_publish *p = c->slots[k].p;
		if (p && !p->returned && strlen(p->message_id) == len &&
		    memcmp(p->message_id, message_id, len) == 0) {
			p->returned = true;
			return;
		}
	}
}

void
bb_confirms_forget(struct bb_confirms *c, struct bb_publish *p)
{
	struct bb_confirm_slot *s = find(c, p->tag);

	if (s && s->p == p)
		s->p = NULL;
	drop_settled(c);
}

void
bb_confirms_settle_all(struct bb_confirms *c, enum bb_publish_result result)
{
	for (size_t k = c->head; k < c->len; k++) {
		if (c->slots[k].p)
			c->slots[k].p->result = result;
	}
	c->head = c->len = 0;
}

bool
bb_confirms_waiting(const struct bb_confirms *c)
{
	return c->head < c->len;
}
