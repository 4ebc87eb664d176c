// {{name}}: a dispatch transformer. dispatchd runs it once per delivery,
// in the `plugins` chain of each subscription that lists it, before it
// signs and sends the request.
//
// componentize-js maps the WIT (wit/plugin.wit) to JavaScript: record
// fields in camelCase (eventType, subscriptionId), headers as [name, value]
// pairs, `option<string>` as a string or undefined, variants as
// { tag, val }. Returning is the result's ok arm; throwing an object with a
// `payload` is its err arm.
import { log, setting } from 'dispatch:plugin/host@{{wit_version}}';

// The hook. `request` is what dispatchd would send (or what the previous
// plugin of the chain returned). Return { tag: 'deliver', val: request },
// changed or not; { tag: 'drop', val: reason } sends nothing; throwing
// fails this attempt (retried, then dead-lettered).
export function transform(event, request) {
  if (event.eventType.startsWith('test.')) {
    return { tag: 'drop', val: 'test events are not delivered' };
  }
  // `[plugins.NAME.settings]` in dispatch.toml: strings as they are,
  // anything else as JSON text.
  const tag = setting('tag') ?? '{{name}}';
  const headers = request.destination.headers.filter(([k]) => k.toLowerCase() !== 'x-processed-by');
  headers.push(['x-processed-by', tag]);
  request.destination.headers = headers;
  log('debug', `processed ${event.id}`);
  return { tag: 'deliver', val: request };
}

// An error for the result's err arm (a plain Error would trap instead):
//   throw failure('why');
export function failure(message) {
  return Object.assign(new Error(message), { payload: message });
}
