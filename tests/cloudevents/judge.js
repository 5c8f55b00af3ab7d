// The consumer side of the cloudevents step (tests/cloudevents/run.py): every
// message Bloodbank put on the bus is handed to the CloudEvents JavaScript SDK,
// which parses it as a structured-mode message (HTTP.toEvent with the
// message's content type) and validate()s it, and constructs it again in
// strict mode (new CloudEvent(JSON.parse(body)): extension names and values
// checked as well).
//
// usage: NODE_PATH=<dir>/node_modules node judge.js FILE
// FILE: a JSON array of {content_type, body}. Prints a JSON array of
// {ok, error, id, source, type, specversion, datacontenttype, data_base64}.
"use strict";

const fs = require("fs");
const { CloudEvent, HTTP } = require("cloudevents");

function why(err) {
  const detail = err && err.errors ? " " + JSON.stringify(err.errors) : "";
  return String(err && err.message ? err.message : err).trim() + detail;
}

const messages = JSON.parse(fs.readFileSync(process.argv[2], "utf-8"));
const verdicts = messages.map(({ content_type, body }) => {
  const v = { ok: false, error: null };
  try {
    const parsed = HTTP.toEvent({ headers: { "content-type": content_type }, body });
    if (Array.isArray(parsed)) throw new Error("parsed as a batch");
    parsed.validate();
    const strict = new CloudEvent(JSON.parse(body));
    strict.validate();
    Object.assign(v, {
      ok: true, id: parsed.id, source: parsed.source, type: parsed.type,
      specversion: parsed.specversion, datacontenttype: strict.datacontenttype,
      data_base64: strict.data_base64 || null,
    });
  } catch (err) {
    v.error = why(err);
  }
  return v;
});
process.stdout.write(JSON.stringify(verdicts) + "\n");
