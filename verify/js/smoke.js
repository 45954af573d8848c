// Node smoke test of the WebAssembly build of licentia-verify (scripts/verify-wasm): every
// golden vector of core/tests/vectors verifies through the JavaScript bindings, and a
// changed byte does not.
"use strict";
const assert = require("node:assert/strict");
const path = require("node:path");
const v = require(path.resolve(process.argv[2], "licentia_verify.js"));
const vectors = path.resolve(__dirname, "../../core/tests/vectors");
const signed = require(path.join(vectors, "signed.json"));
const offline = require(path.join(vectors, "offline.json"));

const keysOf = (x) =>
  JSON.stringify([{ kid: x.kid, algorithm: "Ed25519", public_key: x.public_key,
    status: x.key_status || "active", created_at: "2026-11-22T10:00:00Z" }]);
const envelope = (member, x, bytes) =>
  `{"${member}":${bytes},"signature":{"alg":"Ed25519","kid":"${x.kid}","value":"${x.signature}"},"meta":{}}`;

let checked = 0;
for (const x of signed) {
  const member = x.name.startsWith("refusal") ? "error" : "data";
  const verify = member === "error" ? v.verifyRefusal : v.verifyAnswer;
  assert.equal(verify(keysOf(x), envelope(member, x, x.signed_bytes)), x.signed_bytes, x.name);
  const tampered = x.signed_bytes.replace("{", "{ ");
  assert.throws(() => verify(keysOf(x), envelope(member, x, tampered)), /invalid signature/, x.name);
  checked++;
}
for (const x of offline) {
  const keys = keysOf({ ...x, key_status: "active" });
  const opened = JSON.parse(v.openOffline(keys, JSON.stringify(x.envelope), x.license_key,
    x.binding_key, "2026-11-22T11:00:00Z", ""));
  assert.deepEqual(opened.data, x.data, x.name);
  assert.equal(opened.watermark, "2026-11-22T11:00:00Z");
  assert.throws(() => v.openOffline(keys, JSON.stringify(x.envelope), x.license_key,
    "fingerprint:other", "2026-11-22T11:00:00Z", ""), /another device/, x.name);
  assert.throws(() => v.openOffline(keys, JSON.stringify(x.envelope), x.license_key,
    x.binding_key, "2026-11-22T11:00:00Z", "2026-11-22T13:00:00Z"), /clock moved backwards/);
  checked++;
}
assert.throws(() => v.verifyWebhook("whsec_x", "t=1,v1=00", new Uint8Array(), 1), /malformed/);
console.log(`licentia-verify (wasm): ${checked} golden vectors verified through Node`);
