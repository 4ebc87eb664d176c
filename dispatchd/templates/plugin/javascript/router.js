// {{name}}: a dispatch router. dispatchd runs it once per event, at
// fan-out, before the event's deliveries are stored.
//
// componentize-js maps the WIT (wit/plugin.wit) to JavaScript: record
// fields in camelCase (eventType, subscriptionId), headers as [name, value]
// pairs, `option<string>` as a string or undefined. Returning is the
// result's ok arm; throwing an object with a `payload` is its err arm.
import { log, setting } from 'dispatch:plugin/host@{{wit_version}}';

// The hook. `destinations` holds one entry per subscription the event
// matched. Return those to deliver to: remove entries, change their url,
// method or headers, or add entries naming other subscriptions. An empty
// list drops the event.
export function route(event, destinations) {
  if (event.eventType.startsWith('test.')) {
    return [];
  }
  // `[plugins.NAME.settings]` in dispatch.toml: strings as they are,
  // anything else as JSON text.
  const only = setting('only_subscription');
  if (only !== undefined) {
    return destinations.filter((d) => d.subscriptionId === only);
  }
  log('debug', `routed ${event.id} to ${destinations.length} destinations`);
  return destinations;
}
