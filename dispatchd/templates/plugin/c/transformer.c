// {{name}}: a dispatch transformer. dispatchd runs it once per delivery,
// in the `plugins` chain of each subscription that lists it, before it
// signs and sends the request.
//
// bindings/ is wit-bindgen's C output for wit/plugin.wit. Strings are
// (ptr, len), not NUL-terminated. The hook owns its arguments (free what it
// does not return); what it returns is freed by the bindings after the
// call, so return heap strings (transformer_string_dup), never literals.
// No stdio: log with dispatch_plugin_host_log.
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bindings/transformer.h"

static bool starts_with(const transformer_string_t *s, const char *prefix) {
  size_t n = strlen(prefix);
  return s->len >= n && memcmp(s->ptr, prefix, n) == 0;
}

// Sets header `name` to `value` (taking it), replacing a header of that
// name.
static void set_header(dispatch_plugin_types_headers_t *headers, const char *name,
                       transformer_string_t value) {
  size_t n = strlen(name);
  for (size_t i = 0; i < headers->len; i++) {
    transformer_string_t *k = &headers->ptr[i].f0;
    if (k->len == n && strncasecmp((const char *)k->ptr, name, n) == 0) {
      transformer_string_free(&headers->ptr[i].f1);
      headers->ptr[i].f1 = value;
      return;
    }
  }
  // A new array: an empty list's pointer is not one malloc returned.
  transformer_tuple2_string_string_t *grown = malloc((headers->len + 1) * sizeof *grown);
  if (headers->len > 0) {
    memcpy(grown, headers->ptr, headers->len * sizeof *grown);
    free(headers->ptr);
  }
  transformer_string_dup(&grown[headers->len].f0, name);
  grown[headers->len].f1 = value;
  headers->ptr = grown;
  headers->len++;
}

// The hook. `request` is what dispatchd would send (or what the previous
// plugin of the chain returned). Deliver: set ret->tag to DELIVER and move
// the request into ret->val.deliver. Drop: tag DROP with a reason. Fail
// the attempt (retried, then dead-lettered): set *err and return false.
bool exports_transformer_transform(transformer_event_t *event, transformer_request_t *request,
                                   transformer_decision_t *ret, transformer_string_t *err) {
  (void)err;
  bool test = starts_with(&event->event_type, "test.");
  transformer_event_free(event);
  if (test) {
    transformer_request_free(request);
    ret->tag = DISPATCH_PLUGIN_TYPES_DECISION_DROP;
    transformer_string_dup(&ret->val.drop, "test events are not delivered");
    return true;
  }
  // [plugins.NAME.settings] in dispatch.toml: strings as they are,
  // anything else as JSON text. When it returns false the setting is
  // absent and `tag` is undefined: do not use or free it.
  transformer_string_t key, tag;
  transformer_string_set(&key, "tag");
  if (!dispatch_plugin_host_setting(&key, &tag)) {
    transformer_string_dup(&tag, "{{name}}");
  }
  set_header(&request->destination.headers, "x-processed-by", tag);
  ret->tag = DISPATCH_PLUGIN_TYPES_DECISION_DELIVER;
  ret->val.deliver = *request;
  return true;
}
