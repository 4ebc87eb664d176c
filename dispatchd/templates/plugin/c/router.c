// {{name}}: a dispatch router. dispatchd runs it once per event, at
// fan-out, before the event's deliveries are stored.
//
// bindings/ is wit-bindgen's C output for wit/plugin.wit. Strings are
// (ptr, len), not NUL-terminated. The hook owns its arguments (free what it
// does not return); what it returns is freed by the bindings after the
// call, so return heap strings (router_string_dup), never literals.
// No stdio: log with dispatch_plugin_host_log.
#include <stdlib.h>
#include <string.h>

#include "bindings/router.h"

static bool starts_with(const router_string_t *s, const char *prefix) {
  size_t n = strlen(prefix);
  return s->len >= n && memcmp(s->ptr, prefix, n) == 0;
}

static bool same(const router_string_t *a, const router_string_t *b) {
  return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

// The hook. `destinations` holds one entry per subscription the event
// matched. Return (in *ret) those to deliver to: remove entries, change
// their url, method or headers, or add entries naming other subscriptions.
// An empty list drops the event. Set *err and return false to fail.
bool exports_router_route(router_event_t *event, router_list_destination_t *destinations,
                          router_list_destination_t *ret, router_string_t *err) {
  (void)err;
  bool test = starts_with(&event->event_type, "test.");
  router_event_free(event);
  if (test) {
    router_list_destination_free(destinations);
    ret->ptr = NULL;
    ret->len = 0;
    return true;
  }
  // [plugins.NAME.settings] in dispatch.toml: strings as they are,
  // anything else as JSON text. When it returns false the setting is
  // absent and `only` is undefined: do not use or free it.
  router_string_t key, only;
  router_string_set(&key, "only_subscription");
  if (dispatch_plugin_host_setting(&key, &only)) {
    size_t had = destinations->len, kept = 0;
    for (size_t i = 0; i < destinations->len; i++) {
      router_destination_t *d = &destinations->ptr[i];
      if (same(&d->subscription_id, &only)) {
        destinations->ptr[kept++] = *d;
      } else {
        router_destination_free(d);
      }
    }
    destinations->len = kept;
    if (kept == 0 && had > 0) {
      free(destinations->ptr);
    }
    router_string_free(&only);
  }
  *ret = *destinations;
  return true;
}
