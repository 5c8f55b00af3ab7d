#!/usr/bin/python3
"""Differential test of Bloodbank's JSON Schema validator (src/jsonschema.c)
against python3-jsonschema's Draft7Validator with its format checker.

Random schemas built from the keywords of CONTRACT §10, and random instances
for each, go to the suite driver in one NDJSON file (`suite --ndjson FILE`,
one {"schema","instance"} a line; it answers valid, invalid or refused: ...).
Every answer must be Python's; a schema Bloodbank refuses is a disagreement
too, since only supported keywords are generated. Fails on any disagreement,
printing the schema and the instance.

What is generated stays where the two implementations are meant to agree:
- I-JSON only (RFC 7493, what json.c accepts): no duplicate member names,
  numbers that are short finite doubles; integers within 2**52, where a
  double is exact (Python compares big integers exactly, Bloodbank as
  doubles).
- multipleOf divisors are exact binary fractions and no quotient reaches
  2**52: Python divides and tests whether the rounded quotient is whole, so
  that 2**53 is "a multiple of 1.5" for Python; Bloodbank answers exactly.
- patterns are simple ASCII regular expressions on which Python's re, PCRE2
  and ECMA-262 agree: no \\d, \\w, \\s, \\b (Unicode-aware in Python), no
  lookaround or backreferences; no string ends in a newline (Python's $
  matches before a final newline, ECMA-262's does not).
- format: only the formats that Python's checker asserts in this environment
  are generated as assertions (checked at start, and said in the summary
  line). With Debian 12's python3-jsonschema 4.10 that is date, email, ipv4,
  ipv6 and, with python3-rfc3987 (scripts/deps.sh), uri; date-time and time
  need rfc3339-validator and hostname needs fqdn, which Debian 12 does not
  package, so those three are left to the suite's optional/format files.
  Strings come from a pool on which the two agree by design, and Python's
  answer on each is checked at start: Python's email check is only
  "contains @", so the pool's only strings with an @ are RFC 5321
  mailboxes; its date check is datetime.date.fromisoformat, which also takes
  ISO 8601 basic and week dates (20200229, 2020-W01-1), so the pool has none.
  A format that neither asserts (uri-template) is generated as an
  annotation.

usage: differential.py [--seed N] [--cases N] [--driver PATH]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from jsonschema import Draft7Validator

HERE = os.path.dirname(os.path.abspath(__file__))

NAMES = ["a", "b", "c", "foo", "bar", "x-1", "é", "a b", "q\"t"]

PATTERNS = ["^a", "b$", "^[a-c]+$", "a.c", "^(foo|bar)$", "[0-9]",
            "^x-[0-9]+$", "o{2}", "^$", "^.{2,3}$", "ab?c", "^[^a]*$",
            "\\.", "^[A-Z]", "^[a-z ]*$", "(a|é)"]

# Per format: strings that are instances, strings that are not. Python's
# answer on each is checked at start (a drifted checker stops the run).
FORMAT_POOL = {
    "date-time": (["1963-06-19T08:30:06.283185Z", "2020-02-29T12:00:00+01:00",
                   "1999-12-31T23:59:59-08:00"],
                  ["2021-02-29T12:00:00Z", "06/19/1963 08:30:06 PST",
                   "2013-350T01:01:01", "1963-06-19T08:30:06",
                   "1963-06-19 08:30:06Z"]),
    "date": (["1963-06-19", "2020-02-29", "0001-01-01"],
             ["2021-02-29", "06/19/1963", "2020-13-01", "1963-6-19"]),
    "time": (["08:30:06.283185Z", "08:30:06+01:00", "23:59:59-08:00"],
             ["08:30:06 PST", "01:01:01,1111", "25:00:00Z", "08:30:06",
              "8:30:06Z"]),
    "email": (["joe.bloggs@example.com", "a+b@sub.example.org", "x@y.z"],
              ["example.com", "joe.bloggs"]),
    "ipv4": (["192.168.0.1", "127.0.0.1", "0.0.0.0", "255.255.255.255"],
             ["256.256.256.256", "127.0.0.0.1", "127.0", "087.10.0.1",
              "1.2.3.-4"]),
    "uri": (["http://example.com/a/b?q=1#frag", "urn:isbn:0451450523",
             "ftp://ftp.is.co.za/rfc/rfc1808.txt", "tel:+1-816-555-1212",
             "http://[2001:db8::7]/c=GB?objectClass?one", "a:b"],
            ["//example.com/a", "/abc", "abc", "http:// example.com",
             "\\\\WINDOWS\\fileshare", "http://example.com/ä",
             "1http://x"]),
    "ipv6": (["::1", "2001:db8::1", "fe80::1:2:3:4", "::ffff:192.168.0.1",
              "1:2:3:4:5:6:7:8", "::"],
             ["12345::", "::1::2", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0",
              ":1", "1:2:3:4:5:6:7"]),
}
ANNOTATION_FORMATS = ["uri-template", "iri", "uri-reference"]

STRINGS = ["", "a", "ab", "abc", "aac", "foo", "bar", "foobar", "zoo",
           "Foo", "ABC", "x-12", "12", "1.5", "é", "😀", "aé😀", "a b",
           "a\tb", "quote\"d", "back\\slash", "a.c", "v49"]

NUMBERS = [0, 1, -1, 2, 3, 5, 7, 10, 12, 100, -7, 0.5, 1.5, 2.5, -0.25, 1.0,
           3.0, -0.0, 9.75, 0.1, 1e15, 2 ** 52, -(2 ** 52), 4.5e15, 1e-7]
BOUNDS = [-5, 0, 1, 2.5, 3, 10, 100]
DIVISORS = [2, 3, 7, 0.5, 1.5, 0.25]
TYPES = ["null", "boolean", "object", "array", "number", "string", "integer"]

KEYWORDS = ["type", "enum", "const", "multipleOf", "maximum",
            "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
            "minLength", "pattern", "items", "additionalItems", "maxItems",
            "minItems", "uniqueItems", "contains", "maxProperties",
            "minProperties", "required", "properties", "patternProperties",
            "additionalProperties", "dependencies", "propertyNames", "if",
            "allOf", "anyOf", "oneOf", "not", "$ref", "format"]


def asserted_formats():
    """The formats of FORMAT_POOL that Python's checker asserts, each
    checked on the whole pool; stops on a pool string it answers
    otherwise."""
    checker = Draft7Validator.FORMAT_CHECKER
    out = []
    for fmt, (good, bad) in FORMAT_POOL.items():
        if fmt not in checker.checkers:
            print(f"differential: python's checker does not assert {fmt}; "
                  "not generated", file=sys.stderr)
            continue
        for s in good + bad:
            if checker.conforms(s, fmt) != (s in good):
                sys.exit(f"differential: python's {fmt} checker answers "
                         f"{not (s in good)} on {s!r}: fix FORMAT_POOL")
        out.append(fmt)
    return out


class Gen:
    def __init__(self, rng, formats):
        self.rng = rng
        self.formats = formats
        self.annotations = [f for f in ANNOTATION_FORMATS
                            if f not in Draft7Validator.FORMAT_CHECKER.checkers]
        self.strings = list(STRINGS)
        for fmt in formats:
            self.strings += FORMAT_POOL[fmt][0] + FORMAT_POOL[fmt][1]

    # ------------------------------------------------------------ instances

    def string(self):
        return self.rng.choice(self.strings)

    def instance(self, depth=0):
        r = self.rng.random()
        if depth >= 3:
            r *= 0.7
        if r < 0.08:
            return None
        if r < 0.16:
            return self.rng.random() < 0.5
        if r < 0.38:
            return self.rng.choice(NUMBERS)
        if r < 0.7:
            return self.string()
        if r < 0.85:
            return [self.instance(depth + 1)
                    for _ in range(self.rng.randint(0, 4))]
        names = self.rng.sample(NAMES, self.rng.randint(0, 4))
        return {n: self.instance(depth + 1) for n in names}

    # -------------------------------------------------------------- schemas

    def schema(self, depth, refs, deeper):
        """A schema; refs: the $ref targets it may use; deeper: whether an
        instance-descending keyword lies between it and the root (a "#"
        reference there cannot loop on the same value)."""
        rng = self.rng
        if depth >= 3 or rng.random() < 0.12:
            if rng.random() < 0.4:
                return rng.random() < 0.7
            return {"type": rng.choice(TYPES)}
        s = {}
        for kw in rng.sample(KEYWORDS, rng.randint(1, 4)):
            self.keyword(s, kw, depth, refs, deeper)
        return s

    def sub(self, depth, refs, deeper):
        return self.schema(depth + 1, refs, deeper)

    def keyword(self, s, kw, depth, refs, deeper):
        rng = self.rng
        if kw == "type":
            s[kw] = (rng.choice(TYPES) if rng.random() < 0.6 else
                     rng.sample(TYPES, rng.randint(1, 3)))
        elif kw == "enum":
            if rng.random() < 0.1:
                # long enough to cost more than the schema has nodes
                s[kw] = ([f"v{k}" for k in range(rng.randint(50, 400))] +
                         [self.instance(2)])
            else:
                s[kw] = [self.instance(2) for _ in range(rng.randint(1, 4))]
        elif kw == "const":
            s[kw] = self.instance(2)
        elif kw == "multipleOf":
            s[kw] = rng.choice(DIVISORS)
        elif kw in ("maximum", "exclusiveMaximum", "minimum",
                    "exclusiveMinimum"):
            s[kw] = rng.choice(BOUNDS)
        elif kw in ("maxLength", "minLength", "maxItems", "minItems",
                    "maxProperties", "minProperties"):
            s[kw] = rng.randint(0, 4)
        elif kw == "pattern":
            s[kw] = rng.choice(PATTERNS)
        elif kw == "items":
            if rng.random() < 0.5:
                s[kw] = self.sub(depth, refs, True)
            else:
                s[kw] = [self.sub(depth, refs, True)
                         for _ in range(rng.randint(1, 3))]
        elif kw in ("additionalItems", "contains", "additionalProperties"):
            s[kw] = self.sub(depth, refs, True)
        elif kw == "uniqueItems":
            s[kw] = rng.random() < 0.8
        elif kw == "required":
            s[kw] = rng.sample(NAMES, rng.randint(0, 3))
        elif kw == "properties":
            s[kw] = {n: self.sub(depth, refs, True)
                     for n in rng.sample(NAMES, rng.randint(1, 3))}
        elif kw == "patternProperties":
            s[kw] = {p: self.sub(depth, refs, True)
                     for p in rng.sample(PATTERNS, rng.randint(1, 2))}
        elif kw == "dependencies":
            d = {}
            for n in rng.sample(NAMES, rng.randint(1, 2)):
                if rng.random() < 0.5:
                    d[n] = rng.sample(NAMES, rng.randint(0, 2))
                else:
                    d[n] = self.sub(depth, refs, deeper)
            s[kw] = d
        elif kw == "propertyNames":
            if rng.random() < 0.6:
                s[kw] = rng.choice([{"pattern": rng.choice(PATTERNS)},
                                    {"maxLength": rng.randint(0, 3)},
                                    {"enum": rng.sample(NAMES, 3)},
                                    {"minLength": 2}])
            else:
                s[kw] = self.sub(depth, refs, True)
        elif kw == "if":
            s["if"] = self.sub(depth, refs, deeper)
            if rng.random() < 0.8:
                s["then"] = self.sub(depth, refs, deeper)
            if rng.random() < 0.8:
                s["else"] = self.sub(depth, refs, deeper)
        elif kw in ("allOf", "anyOf", "oneOf"):
            s[kw] = [self.sub(depth, refs, deeper)
                     for _ in range(rng.randint(1, 3))]
        elif kw == "not":
            s[kw] = self.sub(depth, refs, deeper)
        elif kw == "$ref":
            targets = list(refs) + (["#"] if deeper else [])
            if targets:
                s[kw] = rng.choice(targets)
        elif kw == "format":
            choices = self.formats + self.annotations
            if choices:
                s[kw] = rng.choice(choices)

    def root(self):
        """A root schema, with definitions d0.. where di may refer to dj
        for j < i only (no cycle that stays on one value)."""
        rng = self.rng
        refs = []
        defs = {}
        if rng.random() < 0.35:
            for i in range(rng.randint(1, 3)):
                defs[f"d{i}"] = self.schema(1, list(refs), False)
                refs.append(f"#/definitions/d{i}")
        s = self.schema(0, refs, False)
        if defs:
            if s is True or s is False:
                s = {"allOf": [s]}
            s["definitions"] = defs
        return s


def for_python(schema):
    """The same schema in a form python3-jsonschema 4.10 can take: it raises
    TypeError on additionalItems beside a boolean items, and on
    additionalItems false over extra items of mixed types (sorting them for
    its message). {} and {"not": {}} mean true and false there. (No generated
    instance has a member named additionalItems or items.)"""
    if isinstance(schema, list):
        return [for_python(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: for_python(v) for k, v in schema.items()}
    if "additionalItems" in out:
        if out["additionalItems"] is False:
            out["additionalItems"] = {"not": {}}
        if isinstance(out.get("items"), bool):
            out["items"] = {} if out["items"] else {"not": {}}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--per-schema", type=int, default=8,
                    help="instances per schema")
    ap.add_argument("--driver", default=os.path.join(HERE, "suite"))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    formats = asserted_formats()
    gen = Gen(rng, formats)
    cases = []
    while len(cases) < args.cases:
        schema = gen.root()
        for _ in range(args.per_schema):
            cases.append((schema, gen.instance()))
    cases = cases[:args.cases]

    with tempfile.NamedTemporaryFile("w", suffix=".ndjson",
                                     encoding="utf-8") as f:
        for schema, inst in cases:
            f.write(json.dumps({"schema": schema, "instance": inst},
                               ensure_ascii=rng.random() < 0.5,
                               allow_nan=False) + "\n")
        f.flush()
        out = subprocess.run([args.driver, "--ndjson", f.name],
                             capture_output=True, text=True, check=True)
    answers = out.stdout.splitlines()
    if len(answers) != len(cases):
        sys.exit(f"differential: {len(cases)} cases, {len(answers)} answers"
                 f"\n{out.stderr}")

    validators = {}
    disagree = valid = 0
    for (schema, inst), got in zip(cases, answers):
        key = json.dumps(schema, sort_keys=True)
        v = validators.get(key)
        if v is None:
            v = validators[key] = Draft7Validator(
                for_python(schema),
                format_checker=Draft7Validator.FORMAT_CHECKER)
        want = "valid" if v.is_valid(inst) else "invalid"
        valid += want == "valid"
        if got != want:
            disagree += 1
            if disagree <= 10:
                print(f"DISAGREE: python {want}, bloodbank {got}\n"
                      f"  schema:   {json.dumps(schema, ensure_ascii=False)}\n"
                      f"  instance: {json.dumps(inst, ensure_ascii=False)}")
                if want == "invalid":
                    for e in v.iter_errors(inst):
                        print(f"  python: {e.validator}: {e.message}")
    print(f"differential: seed {args.seed}, {len(cases)} cases "
          f"({len(validators)} schemas; python says {valid} valid, "
          f"{len(cases) - valid} invalid; formats asserted: "
          f"{', '.join(formats)}): {len(cases) - disagree} agree, "
          f"{disagree} disagree: {'FAIL' if disagree else 'ok'}")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
