// c-field-filter: delivers only the events whose payload has a top-level
// field with a given value, and drops the rest. A transformer of
// dispatch:plugin@0.1.0, in C: one pass over the payload, no copy of it,
// about 8 KB compiled.
//
// Settings ([plugins.NAME.settings] in dispatch.toml):
//   field   = "status"   the top-level key to look at (required)
//   equals  = "paid"     the value it must have (required): a JSON string
//                        matches its contents; a number, true, false or
//                        null its JSON text (equals = "42")
//   missing = "deliver"  what to do when the field is absent (default: drop)
//
// A payload that is not a JSON object is an error (the attempt fails).
// The bindings are wit-bindgen's C output for the WIT, checked in at
// plugin-sdk/c/transformer; plugin-sdk/README.md has the recipe.
#include <stdlib.h>
#include <string.h>

#include "transformer.h"

typedef struct {
  const uint8_t *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
    c->p++;
  }
}

// Skips the string that starts at c->p (a '"'); false if unterminated.
static bool skip_string(cursor *c) {
  for (c->p++; c->p < c->end; c->p++) {
    if (*c->p == '\\') {
      c->p++;
    } else if (*c->p == '"') {
      c->p++;
      return true;
    }
  }
  return false;
}

// Skips one JSON value; false if it is cut short.
static bool skip_value(cursor *c) {
  if (c->p >= c->end) {
    return false;
  }
  if (*c->p == '"') {
    return skip_string(c);
  }
  if (*c->p == '{' || *c->p == '[') {
    int depth = 0;
    while (c->p < c->end) {
      uint8_t ch = *c->p;
      if (ch == '"') {
        if (!skip_string(c)) {
          return false;
        }
        continue;
      }
      if (ch == '{' || ch == '[') {
        depth++;
      } else if ((ch == '}' || ch == ']') && --depth == 0) {
        c->p++;
        return true;
      }
      c->p++;
    }
    return false;
  }
  const uint8_t *start = c->p;
  while (c->p < c->end && !strchr(",}] \t\r\n", *c->p)) {
    c->p++;
  }
  return c->p > start;
}

enum lookup { FOUND, MISSING, NOT_AN_OBJECT };

// Finds top-level `key` in the object `json`: its value's text in *v.
// Keys are compared as written: an escaped key (`"st\u0061tus"`) is not
// decoded, so it is not the field.
static enum lookup find(const transformer_string_t *json, const transformer_string_t *key,
                        transformer_string_t *v) {
  cursor c = {json->ptr, json->ptr + json->len};
  skip_ws(&c);
  if (c.p >= c.end || *c.p != '{') {
    return NOT_AN_OBJECT;
  }
  c.p++;
  skip_ws(&c);
  if (c.p < c.end && *c.p == '}') {
    return MISSING;
  }
  enum lookup found = MISSING;
  for (;;) {
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '"') {
      return NOT_AN_OBJECT;
    }
    const uint8_t *k = c.p + 1;
    if (!skip_string(&c)) {
      return NOT_AN_OBJECT;
    }
    size_t klen = (size_t)(c.p - 1 - k);
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ':') {
      return NOT_AN_OBJECT;
    }
    c.p++;
    skip_ws(&c);
    const uint8_t *start = c.p;
    if (!skip_value(&c)) {
      return NOT_AN_OBJECT;
    }
    // The last of duplicate keys wins, as in JSON.parse and serde_json.
    if (klen == key->len && memcmp(k, key->ptr, klen) == 0) {
      v->ptr = (uint8_t *)start;
      v->len = (size_t)(c.p - start);
      found = FOUND;
    }
    skip_ws(&c);
    if (c.p < c.end && *c.p == ',') {
      c.p++;
    } else if (c.p < c.end && *c.p == '}') {
      return found;
    } else {
      return NOT_AN_OBJECT;
    }
  }
}

// Whether the JSON value `v` is `want`: a string by its contents (as
// written, escapes included), anything else by its text.
static bool matches(const transformer_string_t *v, const transformer_string_t *want) {
  const uint8_t *p = v->ptr;
  size_t n = v->len;
  if (n >= 2 && p[0] == '"') {
    p++;
    n -= 2;
  }
  return n == want->len && memcmp(p, want->ptr, n) == 0;
}

// A setting, or an empty string (and false) when it is absent: the
// binding leaves *out undefined then, so it must not be used or freed.
static bool setting(const char *name, transformer_string_t *out) {
  transformer_string_t key;
  transformer_string_set(&key, name);
  if (!dispatch_plugin_host_setting(&key, out)) {
    *out = (transformer_string_t){0};
    return false;
  }
  return true;
}

// A message under construction (no printf: it would triple the size).
typedef struct {
  char buf[512];
  size_t len;
} text;

// Appends at most `max` bytes of p[0..n), not splitting a UTF-8 character.
static void put(text *t, const uint8_t *p, size_t n, size_t max) {
  if (n > max) {
    n = max;
    while (n > 0 && (p[n] & 0xC0) == 0x80) {
      n--;
    }
  }
  if (n > sizeof t->buf - t->len) {
    n = 0;
  }
  memcpy(t->buf + t->len, p, n);
  t->len += n;
}

static void put_str(text *t, const char *s) { put(t, (const uint8_t *)s, strlen(s), 100); }

static void put_value(text *t, const transformer_string_t *v) { put(t, v->ptr, v->len, 200); }

// The hook: deliver the request as it is, drop it, or fail.
bool exports_transformer_transform(transformer_event_t *event, transformer_request_t *request,
                                   transformer_decision_t *ret, transformer_string_t *err) {
  transformer_event_free(event);
  transformer_string_t field = {0}, equals = {0}, missing = {0}, value;
  bool ok = true, drop = false;
  if (!setting("field", &field)) {
    transformer_string_dup(err, "c-field-filter: setting `field` (a top-level key) is required");
    ok = false;
  } else if (!setting("equals", &equals)) {
    transformer_string_dup(err, "c-field-filter: setting `equals` (the value to keep) is required");
    ok = false;
  }
  if (ok) {
    bool deliver_missing = setting("missing", &missing) && missing.len == 7 &&
                           memcmp(missing.ptr, "deliver", 7) == 0;
    switch (find(&request->payload, &field, &value)) {
    case NOT_AN_OBJECT:
      transformer_string_dup(err, "c-field-filter: the payload is not a JSON object");
      ok = false;
      break;
    case MISSING:
      drop = !deliver_missing;
      if (drop) {
        text t = {.len = 0};
        put_str(&t, "c-field-filter: no field \"");
        put_value(&t, &field);
        put_str(&t, "\"");
        transformer_string_dup_n(&ret->val.drop, t.buf, t.len);
      }
      break;
    case FOUND:
      drop = !matches(&value, &equals);
      if (drop) {
        text t = {.len = 0};
        put_str(&t, "c-field-filter: ");
        put_value(&t, &field);
        put_str(&t, " is ");
        put_value(&t, &value);
        transformer_string_dup_n(&ret->val.drop, t.buf, t.len);
      }
      break;
    }
  }
  if (ok && !drop) {
    ret->tag = DISPATCH_PLUGIN_TYPES_DECISION_DELIVER;
    ret->val.deliver = *request;
  } else {
    ret->tag = DISPATCH_PLUGIN_TYPES_DECISION_DROP;
    transformer_request_free(request);
  }
  transformer_string_free(&field);
  transformer_string_free(&equals);
  transformer_string_free(&missing);
  return ok;
}
