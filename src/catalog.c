#include "catalog.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "validate.h"
#include "xalloc.h"

struct entry {
	char type[256];
	struct bb_jsonschema *schema;
};

struct bb_catalog {
	struct entry *entries;	/* sorted by type */
	int n, cap;
};

static int
by_type(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->type,
	    ((const struct entry *)b)->type);
}

/* Reads a whole file of at most BB_CATALOG_MAX_FILE bytes into out. */
static int
read_file(const char *path, struct bb_buf *out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_size > BB_CATALOG_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    BB_CATALOG_MAX_FILE);
		close(fd);
		return -1;
	}
	bb_buf_reset(out);
	do {
		char *at = bb_buf_space(out, 65536);
		n = read(fd, at, 65536);
		if (n > 0)
			out->len += (size_t)n;
	} while (n > 0 && out->len <= BB_CATALOG_MAX_FILE);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The event type a file name stands for: "<event_type>.json". Returns
 * 1, 0 for a file that is not a schema (a README, an example), or -1
 * with the reason for a *.json file named for no usable type. */
static int
file_type(const char *name, char *type, size_t typelen, const char *path,
    char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (name[0] == '.' || len < 5 || strcmp(name + len - 5, ".json") != 0)
		return 0;
	len -= 5;
	if (!bb_event_type_valid(name, len) || len >= typelen) {
		snprintf(err, errlen, "%s: the file name is not "
		    "<event_type>.json (1-255 bytes of [a-z0-9_-] segments "
		    "joined by single dots)", path);
		return -1;
	}
	if (bb_typed_lookup(name, len) != NULL) {
		snprintf(err, errlen, "%s: %.*s has a typed endpoint and its "
		    "built-in schema; a file cannot replace it", path,
		    (int)len, name);
		return -1;
	}
	memcpy(type, name, len);
	type[len] = '\0';
	return 1;
}

static int
load_file(struct bb_catalog *c, const char *dir, const char *name,
    struct bb_buf *text, char *err, size_t errlen)
{
	char path[4096], type[256], why[512];
	struct bb_jsonschema *s;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = file_type(name, type, sizeof(type), path, err, errlen);
	if (rc <= 0)
		return rc;
	if (read_file(path, text, err, errlen) != 0)
		return -1;
	s = bb_jsonschema_compile(text->data ? text->data : "", text->len, why,
	    sizeof(why));
	if (s == NULL) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->entries = bb_xreallocarray(c->entries, (size_t)c->cap,
		    sizeof(*c->entries));
	}
	snprintf(c->entries[c->n].type, sizeof(c->entries[c->n].type), "%s",
	    type);
	c->entries[c->n].schema = s;
	c->n++;
	return 0;
}

struct bb_catalog *
bb_catalog_load(const char *dir, char *err, size_t errlen)
{
	struct bb_catalog *c = bb_xcalloc(1, sizeof(*c));
	struct bb_buf text;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (dir == NULL || dir[0] == '\0')
		return c;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return c;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		bb_catalog_free(c);
		return NULL;
	}
	bb_buf_init(&text);
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL)
		rc = load_file(c, dir, de->d_name, &text, err, errlen);
	if (rc == 0 && errno != 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	bb_buf_free(&text);
	if (rc != 0) {
		bb_catalog_free(c);
		return NULL;
	}
	qsort(c->entries, (size_t)c->n, sizeof(*c->entries), by_type);
	return c;
}

void
bb_catalog_free(struct bb_catalog *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->n; k++)
		bb_jsonschema_free(c->entries[k].schema);
	free(c->entries);
	free(c);
}

int
bb_catalog_count(const struct bb_catalog *c)
{
	return c ? c->n : 0;
}

const struct bb_jsonschema *
bb_catalog_find(const struct bb_catalog *c, const char *type, size_t len)
{
	int lo = 0, hi = c ? c->n : 0;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const char *t = c->entries[mid].type;
		int cmp = strncmp(t, type, len);
		if (cmp == 0)
			cmp = t[len] != '\0';
		if (cmp == 0)
			return c->entries[mid].schema;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
write_item(struct bb_buf *out, bool first, const char *type,
    const char *title, const char *description)
{
	if (!first)
		bb_buf_putc(out, ',');
	bb_buf_puts(out, "{\"event_type\":");
	bb_json_write_string(out, type, strlen(type));
	bb_buf_puts(out, ",\"title\":");
	bb_json_write_string(out, title, strlen(title));
	bb_buf_puts(out, ",\"description\":");
	bb_json_write_string(out, description, strlen(description));
	bb_buf_puts(out, ",\"href\":\"/schemas/");
	bb_buf_puts(out, type);	/* an event type needs no escaping */
	bb_buf_puts(out, "\"}");
}

/* GET /schemas: the files' types and the typed ones, merged in order. */
static void
write_index(const struct bb_catalog *c, struct bb_buf *out)
{
	size_t t = 0;
	int k = 0;

	bb_buf_puts(out, "{\"schemas\":[");
	for (;;) {
		const struct bb_typed *typed = bb_typed_at(t);
		const struct entry *e = c && k < c->n ? &c->entries[k] : NULL;
		bool first = t == 0 && k == 0;
		if (typed == NULL && e == NULL)
			break;
		if (e == NULL || (typed && strcmp(typed->event_type,
		    e->type) < 0)) {
			write_item(out, first, typed->event_type,
			    typed->event_type, typed->description);
			t++;
		} else {
			write_item(out, first, e->type,
			    bb_jsonschema_title(e->schema),
			    bb_jsonschema_description(e->schema));
			k++;
		}
	}
	bb_buf_puts(out, "]}");
}

void
bb_catalog_answer(const struct bb_catalog *c, const char *type, size_t len,
    struct bb_response *resp)
{
	const struct bb_typed *typed;
	const struct bb_jsonschema *s;
	const char *text;
	size_t n;

	bb_response_reset(resp);
	resp->status = 200;
	if (type == NULL) {
		write_index(c, &resp->body);
		return;
	}
	resp->content_type = "application/schema+json";
	if ((typed = bb_typed_lookup(type, len)) != NULL) {
		bb_typed_write_schema(typed, &resp->body);
	} else if ((s = bb_catalog_find(c, type, len)) != NULL) {
		text = bb_jsonschema_text(s, &n);
		bb_buf_append(&resp->body, text, n);
	} else {
		resp->content_type = NULL;
		bb_response_error(resp, 404, "not_found", "no schema for this "
		    "event type: its payload may be any JSON object");
	}
}
