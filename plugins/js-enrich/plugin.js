// js-enrich: adds fields and a header, renames the event type, drops or
// fails on request. A transformer of dispatch:plugin@0.1.0, in JavaScript.
//
// Values follow componentize-js's mapping of the WIT interface: record
// fields in camelCase (eventType, subscriptionId, receivedAt), headers as
// [name, value] pairs, `option<string>` as a string or undefined, u64 as a
// BigInt, enums as strings ('envelope', 'raw'), variants as
// { tag: 'deliver', val: request } / { tag: 'drop', val: reason }.
// Returning a value is the result's ok arm. Throwing is its err arm, with
// the thrown value's `payload` (or the thrown string) as the message; a
// thrown Error without `payload` traps instead (see `failure` below).
import { log, setting } from 'dispatch:plugin/host@0.1.0';

export function transform(event, request) {
  let data;
  try {
    data = JSON.parse(request.payload);
  } catch (e) {
    throw failure(`js plugin: payload is not JSON: ${e.message}`);
  }
  const isObject = data !== null && typeof data === 'object' && !Array.isArray(data);
  if (isObject && data.fail === true) {
    throw failure('js plugin: failure requested');
  }
  if (isObject && data.drop === true) {
    return { tag: 'drop', val: 'js plugin: drop requested' };
  }
  if (isObject) {
    data.enriched_by = 'js';
    if (typeof data.total === 'number') {
      data.total_cents = Math.round(data.total * 100);
    }
    request.payload = JSON.stringify(data);
  }
  const suffix = setting('suffix');
  if (suffix) {
    request.eventType = request.eventType + suffix;
  }
  setHeader(request, 'x-enriched-by', 'js');
  log('debug', `enriched ${event.id} (${request.eventType})`);
  return { tag: 'deliver', val: request };
}

// Sets header `name` (case-insensitive), replacing any value it had.
function setHeader(request, name, value) {
  const lower = name.toLowerCase();
  const headers = request.destination.headers.filter(([k]) => k.toLowerCase() !== lower);
  headers.push([name, value]);
  request.destination.headers = headers;
}

// An error for the result's err arm: componentize-js sends the `payload` of
// what was thrown. (A plain Error would trap the instance, and dispatchd
// would report a trap instead of this message.)
function failure(message) {
  return Object.assign(new Error(message), { payload: message });
}
