// The producer side of the cloudevents step (tests/cloudevents/run.py): the
// CloudEvents JavaScript SDK's own HTTP emitter publishes events to Bloodbank's
// POST /events in binary and structured mode, and a batch is posted as the
// SDK's structured serializer writes each event (v8 has no batch emitter).
//
// usage: NODE_PATH=<dir>/node_modules node emit.js BB_URL RUN
// Prints one JSON line per event sent: {name, mode, status, id, source, type,
// event (the SDK's JSON form), answer (the HTTP answer body), replayed}.
"use strict";

const http = require("http");
const { CloudEvent, HTTP, Mode, emitterFor, httpTransport } = require("cloudevents");

const [url, run] = process.argv.slice(2);
if (!url || !run) {
  console.error("usage: node emit.js BB_URL RUN");
  process.exit(2);
}

// httpTransport resolves with the answer's body and headers only; its status
// is taken here, from the response of the request it makes through node's
// http module (the emits are sequential).
let last = null;
const request = http.request;
http.request = function (...args) {
  const req = request.apply(this, args);
  req.on("response", (res) => { last = { status: res.statusCode, headers: res.headers }; });
  return req;
};

const sink = url.replace(/\/$/, "") + "/events";
const binary = emitterFor(httpTransport(sink), { mode: Mode.BINARY });
const structured = emitterFor(httpTransport(sink), { mode: Mode.STRUCTURED });
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TS = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

function report(name, mode, ev, status, answer, headers) {
  process.stdout.write(JSON.stringify({
    name, mode, status, id: ev.id, source: ev.source, type: ev.type,
    event: JSON.parse(JSON.stringify(ev)), answer,
    replayed: (headers || {})["idempotent-replayed"] === "true",
  }) + "\n");
}

async function emit(name, mode, ev) {
  last = null;
  const emitter = mode === "binary" ? binary : structured;
  const resp = await emitter(ev);
  if (last === null) throw new Error(name + ": no HTTP response seen");
  report(name, mode, ev, last.status, resp.body, resp.headers);
  return resp.body;
}

function bloodbankid(name, answer) {
  try {
    const id = JSON.parse(answer).bloodbankid;
    if (typeof id === "string") return id;
  } catch (e) { /* reported below */ }
  throw new Error(name + ": the answer has no bloodbankid: " + answer);
}

// the batched mode: a JSON array of the SDK's structured documents
function postBatch(events) {
  const body = JSON.stringify(events.map((ev) => JSON.parse(HTTP.structured(ev).body)));
  const target = new URL(url.replace(/\/$/, "") + "/events/batch");
  return new Promise((resolve, reject) => {
    const req = http.request(target, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json",
                 "content-length": Buffer.byteLength(body) },
    }, (res) => {
      let answer = "";
      res.setEncoding("utf-8");
      res.on("data", (c) => { answer += c; });
      res.on("end", () => resolve({ status: res.statusCode, answer }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function main() {
  const src = "/tests/cloudevents/sdk/" + run;
  const ev = (attrs) => new CloudEvent({ source: src, ...attrs });

  // binary mode
  const b1 = ev({ type: "test.ce.sdk.binary", subject: "sdk-subject",
                  data: { mode: "binary", n: 1 }, sdkext: "v", sdkint: 42, sdkbool: true,
                  correlationid: "conv-" + run });
  const b1answer = await emit("binary-json", "binary", b1);
  await emit("binary-json-retry", "binary", b1);   // the same event again: a replay
  await emit("binary-text", "binary", ev({ type: "test.ce.sdk.binary", datacontenttype: "text/plain",
                                           data: "hello, text from the sdk" }));
  await emit("binary-causation", "binary", ev({ type: "test.ce.sdk.binary", data: { child: true },
                                                causationid: bloodbankid("binary-json", b1answer) }));
  await emit("binary-trace", "binary", ev({ type: "test.ce.sdk.binary", data: { traced: true },
                                            traceparent: TP, tracestate: TS }));
  await emit("binary-typed", "binary", ev({ type: "llm.prompt", data: { prompt: "from the sdk" } }));
  await emit("binary-dataschema", "binary", ev({ type: "test.ce.sdk.binary", data: { s: 1 },
                                                 dataschema: "https://example.com/schemas/sdk" }));

  // structured mode
  const s1answer = await emit("structured-json", "structured", ev({
    type: "test.ce.sdk.structured", subject: "sdk-subject", datacontenttype: "application/json",
    data: { mode: "structured", list: [1, "two", null] }, sdkext: "v", sdkint: 42, sdkbool: true,
    correlationid: "conv-" + run }));
  await emit("structured-binary-data", "structured", ev({
    type: "test.ce.sdk.structured", datacontenttype: "application/octet-stream",
    data: new Uint8Array([0, 1, 2, 253, 254, 255]) }));
  await emit("structured-text", "structured", ev({
    type: "test.ce.sdk.structured", datacontenttype: "text/plain", data: "a string from the sdk" }));
  await emit("structured-schema", "structured", ev({
    type: "order.placed", data: {
      order_id: "ORD-000042", customer: { email: "sdk@example.com" },
      items: [{ sku: "SDK-0001", qty: 1 }], placed_at: "2024-05-01T12:30:00Z", currency: "EUR" } }));
  await emit("structured-causation", "structured", ev({
    type: "test.ce.sdk.structured", data: {},
    causationid: bloodbankid("structured-json", s1answer) + "," + bloodbankid("binary-json", b1answer) }));

  // batched mode
  const items = [
    ev({ type: "test.ce.sdk.batch", data: { i: 0 } }),
    ev({ type: "test.ce.sdk.batch", data: { i: 1 }, batchext: "b" }),
    ev({ type: "test.ce.sdk.batch", datacontenttype: "text/plain", data: "batch text" }),
  ];
  const { status, answer } = await postBatch(items);
  let results = [];
  try { results = JSON.parse(answer).results || []; } catch (e) { /* status says */ }
  items.forEach((item, k) => {
    const r = results[k] || {};
    report("batch-" + k, "batch", item, status === 200 ? r.status : status, JSON.stringify(r), {});
  });
}

main().catch((err) => {
  console.error("emit.js: " + (err && err.stack ? err.stack : err));
  process.exit(1);
});
