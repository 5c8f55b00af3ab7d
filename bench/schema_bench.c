/* schema_bench: microseconds per JSON Schema validation (CONTRACT §10),
 * the figure behind "compiled once, validated by walking the tokens".
 *
 * Cases: (a) the guide's llm.prompt sample under a schema for llm.prompt-like
 * payloads (the fields of CONTRACT §4.2); (b) a ~2 KB order event under a
 * schema of 33 validation keywords (nested objects, an array of line items,
 * local $refs, patterns, formats, enums, required, additionalProperties
 * false, if/then/else, oneOf); (c) the same event with four faults, for the
 * cost of reporting errors. Each document is parsed once and validated in a
 * loop with one working memory, as a worker does; the parse of the same text
 * is timed too, as the cost the request already pays.
 *
 * usage: schema_bench [ITERATIONS]   (default 200000 for (a), a tenth for
 *                                     (b) and (c))
 * Prints one line per case; no pass or fail beyond each sample's expected
 * answer. Figures are per-process CPU time from one core of the machine it
 * runs on: state the machine with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonschema.h"

static const char prompt_schema[] =
	"{\"title\":\"llm.prompt\",\"type\":\"object\",\"required\":[\"prompt\"],"
	"\"properties\":{"
	"\"prompt\":{\"type\":\"string\",\"minLength\":1},"
	"\"provider\":{\"type\":[\"string\",\"null\"]},"
	"\"model\":{\"type\":[\"string\",\"null\"]},"
	"\"project\":{\"type\":[\"string\",\"null\"]},"
	"\"working_dir\":{\"type\":[\"string\",\"null\"]},"
	"\"domain\":{\"type\":[\"string\",\"null\"]},"
	"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2}}}";

static const char prompt_sample[] =
	"{\"prompt\":\"Test prompt\",\"model\":\"gpt-4\",\"temperature\":0.7}";

static const char order_schema[] =
	"{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
	"\"title\":\"order.placed\","
	"\"description\":\"An order as the shop's checkout publishes it\","
	"\"type\":\"object\",\"required\":[\"order_id\",\"placed_at\",\"customer\","
	"\"currency\",\"items\",\"totals\",\"payment\"],"
	"\"additionalProperties\":false,\"definitions\":{\"money\":{"
	"\"type\":\"number\",\"minimum\":0,\"maximum\":1000000},\"address\":{"
	"\"type\":\"object\",\"required\":[\"street\",\"city\",\"postal_code\","
	"\"country\"],\"additionalProperties\":false,\"properties\":{"
	"\"street\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
	"\"city\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	"\"postal_code\":{\"type\":\"string\",\"pattern\":\"^[A-Z0-9][A-Z0-9 -]{"
	"2,9}$\"},\"country\":"
	"{\"enum\":[\"DE\",\"FR\",\"GB\",\"NL\",\"US\",\"CA\"]}}}},"
	"\"properties\":{\"order_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
	"\"placed_at\":{\"type\":\"string\",\"format\":\"date-time\"},\"channel\":{"
	"\"const\":\"web\"},\"customer\":{\"type\":\"object\",\"required\":[\"id\","
	"\"email\"],\"additionalProperties\":false,\"properties\":{\"id\":{"
	"\"type\":\"integer\",\"exclusiveMinimum\":0},\"email\":{"
	"\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},\"name\":{"
	"\"type\":\"string\",\"maxLength\":100},\"phone\":{\"type\":\"string\","
	"\"pattern\":\"^\\\\+[1-9][0-9]{6,14}$\"},\"address\":{"
	"\"$ref\":\"#/definitions/address\"}},\"dependencies\":{\"phone\":["
	"\"name\"]}},\"currency\":{\"enum\":[\"EUR\",\"USD\",\"GBP\",\"CAD\"]},"
	"\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":100,\"items\":{"
	"\"type\":\"object\",\"required\":[\"sku\",\"quantity\",\"unit_price\"],"
	"\"additionalProperties\":false,\"properties\":{\"sku\":{"
	"\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-[0-9]{4,8}$\"},\"name\":{"
	"\"type\":\"string\",\"minLength\":1,\"maxLength\":120},\"quantity\":{"
	"\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"multipleOf\":1},"
	"\"unit_price\":{\"$ref\":\"#/definitions/money\"},\"discount\":{"
	"\"type\":\"number\",\"minimum\":0,\"exclusiveMaximum\":1}}},"
	"\"contains\":{\"properties\":{\"quantity\":{\"minimum\":1}}}},"
	"\"totals\":{\"type\":\"object\",\"required\":[\"subtotal\",\"total\"],"
	"\"propertyNames\":{\"enum\":[\"subtotal\",\"tax\",\"shipping\","
	"\"total\"]},\"minProperties\":2,\"maxProperties\":4,"
	"\"additionalProperties\":{\"$ref\":\"#/definitions/money\"}},"
	"\"payment\":{\"oneOf\":[{\"type\":\"object\",\"required\":[\"method\","
	"\"last4\"],\"properties\":{\"method\":{\"const\":\"card\"},\"last4\":{"
	"\"type\":\"string\",\"pattern\":\"^[0-9]{4}$\"}}},{\"type\":\"object\","
	"\"required\":[\"method\",\"iban\"],\"properties\":{\"method\":{"
	"\"const\":\"invoice\"},\"iban\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{"
	"2}[0-9]{2}[A-Z0-9]{11,30}$\"}}}]},\"shipping\":{\"type\":\"object\","
	"\"properties\":{\"method\":{\"enum\":[\"standard\",\"express\","
	"\"pickup\"]},\"address\":{\"$ref\":\"#/definitions/address\"},"
	"\"deliver_by\":{\"type\":\"string\",\"format\":\"date\"}},\"if\":{"
	"\"properties\":{\"method\":{\"const\":\"express\"}}},\"then\":{"
	"\"required\":[\"deliver_by\"]},\"else\":{\"not\":{\"required\":["
	"\"deliver_by\"]}}},\"coupon\":{\"anyOf\":[{\"type\":\"null\"},{"
	"\"type\":\"string\",\"pattern\":\"^[A-Z0-9]{6,12}$\"}]},\"tags\":{"
	"\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":32},"
	"\"uniqueItems\":true,\"maxItems\":10},\"client_ip\":{"
	"\"type\":\"string\",\"anyOf\":[{\"format\":\"ipv4\"},{"
	"\"format\":\"ipv6\"}]},\"referrer\":{\"type\":[\"string\",\"null\"],"
	"\"format\":\"uri\"},\"metadata\":{\"type\":\"object\","
	"\"maxProperties\":16,\"patternProperties\":{\"^x-[a-z-]+$\":{"
	"\"type\":[\"string\",\"number\",\"boolean\"]}},"
	"\"additionalProperties\":false},\"notes\":{\"allOf\":[{"
	"\"type\":\"string\"},{\"maxLength\":500}]}}}";

static const char order_event[] =
	"{\"order_id\":\"3f2b8c1e-9d4a-4c7e-b1f0-6a5d2e8c9b71\","
	"\"placed_at\":\"2026-11-26T21:28:51.123456+00:00\","
	"\"channel\":\"web\",\"customer\":{\"id\":482913,"
	"\"email\":\"jane.doe@example.com\",\"name\":\"Jane Doe\","
	"\"phone\":\"+4915123456789\",\"address\":{"
	"\"street\":\"Hauptstrasse 12\",\"city\":\"Berlin\","
	"\"postal_code\":\"10115\",\"country\":\"DE\"}},\"currency\":\"EUR\","
	"\"items\":[{\"sku\":\"ABC-1001\",\"name\":\"Espresso beans, 1 kg,"
	" dark roast\",\"quantity\":2,\"unit_price\":18.5,\"discount\":0},{"
	"\"sku\":\"ABC-1002\",\"name\":\"Ceramic pour-over dripper\","
	"\"quantity\":1,\"unit_price\":24.9,\"discount\":0.1},{"
	"\"sku\":\"XYZ-20031\",\"name\":\"Paper filters (100)\",\"quantity\":3,"
	"\"unit_price\":4.95,\"discount\":0},{\"sku\":\"KLM-7781\","
	"\"name\":\"Burr grinder, manual\",\"quantity\":1,\"unit_price\":59.0,"
	"\"discount\":0.05},{\"sku\":\"QRS-445566\","
	"\"name\":\"Gooseneck kettle 0.8 l\",\"quantity\":1,"
	"\"unit_price\":39.99,\"discount\":0},{\"sku\":\"TUV-9090\","
	"\"name\":\"Digital scale with timer\",\"quantity\":1,"
	"\"unit_price\":29.5,\"discount\":0},{\"sku\":\"ABC-1003\","
	"\"name\":\"Travel mug, 350 ml\",\"quantity\":2,\"unit_price\":14.0,"
	"\"discount\":0.15},{\"sku\":\"DEF-31337\",\"name\":\"Cleaning tablets\","
	"\"quantity\":4,\"unit_price\":6.75,\"discount\":0},{"
	"\"sku\":\"GHI-2024\",\"name\":\"Cold brew bottle 1 l\",\"quantity\":1,"
	"\"unit_price\":22.0,\"discount\":0.2},{\"sku\":\"JKL-55501\","
	"\"name\":\"Milk frother, battery\",\"quantity\":1,\"unit_price\":17.5,"
	"\"discount\":0},{\"sku\":\"MNO-8080\",\"name\":\"Barista apron, navy\","
	"\"quantity\":1,\"unit_price\":21.9,\"discount\":0.1}],\"totals\":{"
	"\"subtotal\":266.78,\"tax\":50.69,\"shipping\":4.9,\"total\":322.37},"
	"\"payment\":{\"method\":\"card\",\"last4\":\"4242\"},\"shipping\":{"
	"\"method\":\"express\",\"deliver_by\":\"2026-11-28\",\"address\":{"
	"\"street\":\"Hauptstrasse 12\",\"city\":\"Berlin\","
	"\"postal_code\":\"10115\",\"country\":\"DE\"}},\"coupon\":\"WINTER2026\","
	"\"tags\":[\"coffee\",\"gift\",\"first-order\",\"newsletter\"],"
	"\"client_ip\":\"2001:db8::17\","
	"\"referrer\":\"https://www.example.com/blog/brewing-guide"
	"?utm_source=newsletter\","
	"\"metadata\":{\"x-campaign\":\"winter-sale\",\"x-ab-bucket\":3,"
	"\"x-mobile\":false},"
	"\"notes\":\"Please leave the parcel with the neighbour at number 14 "
	"if nobody is at home; ring twice,"
	" the bell is quiet.\"}";

struct sample {
	const char *name;
	const char *schema;
	const char *text;	/* NULL: order_event with faults */
	int want;		/* failing locations expected */
	int div;		/* fraction of the iterations */
};

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The order event with a bad email, an unknown member in a line item, a
 * negative unit price and a coupon that matches no pattern. */
static char *
faulty_order(void)
{
	static const char *const swaps[][2] = {
		{ "jane.doe@example.com", "jane.doe at example" },
		{ "\"discount\":0.05", "\"discont\":0.05" },
		{ "\"unit_price\":22.0", "\"unit_price\":-2.0" },
		{ "WINTER2026", "winter-2026" },
	};
	char *s = strdup(order_event);

	for (size_t k = 0; k < sizeof(swaps) / sizeof(swaps[0]); k++) {
		char *at = strstr(s, swaps[k][0]);
		size_t from = strlen(swaps[k][0]), to = strlen(swaps[k][1]);
		char *t = malloc(strlen(s) - from + to + 1);

		if (at == NULL)
			abort();
		sprintf(t, "%.*s%s%s", (int)(at - s), s, swaps[k][1],
		    at + from);
		free(s);
		s = t;
	}
	return s;
}

static int
run(const struct sample *c, long iterations)
{
	char err[256];
	struct bb_jsonschema *s = bb_jsonschema_compile(c->schema,
	    strlen(c->schema), err, sizeof(err));
	struct bb_jsonschema_work w;
	struct bb_buf errors;
	struct bb_json doc;
	char *text = c->text ? strdup(c->text) : faulty_order();
	size_t len = strlen(text);
	double t0, t_validate, t_parse;
	int n = 0;

	if (s == NULL) {
		fprintf(stderr, "schema_bench: %s: schema refused: %s\n",
		    c->name, err);
		return 1;
	}
	if (bb_json_parse(&doc, text, len, err, sizeof(err)) != BB_JSON_OK) {
		fprintf(stderr, "schema_bench: %s: %s\n", c->name, err);
		return 1;
	}
	bb_jsonschema_work_init(&w);
	bb_buf_init(&errors);
	n = bb_jsonschema_validate(s, &doc, 0, &w, &errors);
	if (n != c->want) {
		fprintf(stderr, "schema_bench: %s: %d failing locations, "
		    "expected %d: [%.*s]\n", c->name, n, c->want,
		    (int)errors.len, errors.data ? errors.data : "");
		return 1;
	}
	t0 = cpu_now();
	for (long i = 0; i < iterations; i++) {
		bb_buf_reset(&errors);
		n += bb_jsonschema_validate(s, &doc, 0, &w, &errors);
	}
	t_validate = cpu_now() - t0;
	bb_json_free(&doc);
	t0 = cpu_now();
	for (long i = 0; i < iterations; i++) {
		bb_json_parse(&doc, text, len, err, sizeof(err));
		bb_json_free(&doc);
	}
	t_parse = cpu_now() - t0;
	printf("%-28s %5zu bytes  %8.3f us/validation  (parse %7.3f us)  "
	    "%ld runs\n", c->name, len, t_validate * 1e6 / (double)iterations,
	    t_parse * 1e6 / (double)iterations, iterations);
	bb_buf_free(&errors);
	bb_jsonschema_work_free(&w);
	bb_jsonschema_free(s);
	free(text);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct sample samples[] = {
		{ "llm.prompt sample", prompt_schema, prompt_sample, 0, 1 },
		{ "order event, 33 keywords", order_schema, order_event, 0,
		    10 },
		{ "order event, 4 faults", order_schema, NULL, 4, 10 },
	};
	long iterations = argc > 1 ? atol(argv[1]) : 200000;
	int rc = 0;

	if (iterations < 10) {
		fprintf(stderr, "usage: schema_bench [ITERATIONS >= 10]\n");
		return 2;
	}
	for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++)
		rc |= run(&samples[k], iterations / samples[k].div);
	return rc;
}
