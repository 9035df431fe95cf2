// world: transform-plugin
// `fingerprint` (C): tags each JSON object with `fp`, the FNV-1a 32-bit hash of its JSON text,
// as the object's first field. Empty objects are dropped; anything else is refused. The same
// transform exists in Rust, Python and JavaScript; on compact JSON input (what the Autoflow
// SDKs write) their outputs are byte-identical. This one works on the text as it is: it does
// not parse or re-format the JSON, so it expects it compact.
//
// Bindings: `wit-bindgen c wit -w transform-plugin`; plugins/build-lang.sh compiles it with
// clang for wasm32-wasi and makes the component with `wasm-tools component new` and the WASI
// preview1 reactor adapter. Ownership follows the canonical ABI: the records passed in are
// ours to free or to move into the output; what we return is freed after the call.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform_plugin.h"

typedef exports_autoflow_plugin_transform_record_t record_t;
typedef autoflow_plugin_types_rejection_t rejection_t;

// Length of the `{"fp":"xxxxxxxx",` prefix that replaces the object's opening brace.
#define PREFIX_LEN 17

static uint32_t fnv1a(const uint8_t *p, size_t n) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

static bool is_object(const transform_plugin_list_u8_t *v) {
  return v->len >= 2 && v->ptr[0] == '{' && v->ptr[v->len - 1] == '}';
}

static bool fail(exports_autoflow_plugin_transform_error_t *err, const char *message) {
  err->tag = AUTOFLOW_PLUGIN_TYPES_ERROR_FATAL;
  transform_plugin_string_dup(&err->val.fatal, message);
  return false;
}

void exports_autoflow_plugin_transform_describe(exports_autoflow_plugin_transform_metadata_t *ret) {
  transform_plugin_string_dup(&ret->name, "fingerprint");
  transform_plugin_string_dup(&ret->version, "0.1.0");
  transform_plugin_string_dup(&ret->description,
                              "Adds `fp`, the FNV-1a hash of each JSON object, as its first field.");
  ret->config_schema.is_some = true;
  transform_plugin_string_dup(&ret->config_schema.val, "{\"type\":\"object\",\"additionalProperties\":false}");
}

bool exports_autoflow_plugin_transform_open(transform_plugin_string_t *config,
                                            exports_autoflow_plugin_transform_error_t *err) {
  (void)err;  // The host checked the config against the schema: nothing to read.
  transform_plugin_string_free(config);
  return true;
}

bool exports_autoflow_plugin_transform_process(exports_autoflow_plugin_transform_list_record_t *records,
                                               exports_autoflow_plugin_transform_processed_t *ret,
                                               exports_autoflow_plugin_transform_error_t *err) {
  size_t n = records->len, kept = 0, refused = 0;
  record_t *out = malloc((n ? n : 1) * sizeof *out);
  rejection_t *rejected = malloc((n ? n : 1) * sizeof *rejected);
  if (!out || !rejected) return fail(err, "out of memory");
  for (size_t i = 0; i < n; i++) {
    record_t *r = &records->ptr[i];
    if (!is_object(&r->value)) {
      rejected[refused].index = (uint32_t)i;
      transform_plugin_string_dup(&rejected[refused++].reason, "not a JSON object");
      exports_autoflow_plugin_transform_record_free(r);
      continue;
    }
    if (r->value.len == 2) {  // `{}`: dropped
      exports_autoflow_plugin_transform_record_free(r);
      continue;
    }
    size_t len = PREFIX_LEN + r->value.len - 1;
    uint8_t *value = malloc(len + 1);
    if (!value) return fail(err, "out of memory");
    snprintf((char *)value, PREFIX_LEN + 1, "{\"fp\":\"%08x\",", fnv1a(r->value.ptr, r->value.len));
    memcpy(value + PREFIX_LEN, r->value.ptr + 1, r->value.len - 1);
    transform_plugin_list_u8_free(&r->value);
    out[kept] = *r;  // key, headers and timestamp move to the output record
    out[kept].value.ptr = value;
    out[kept++].value.len = len;
  }
  free(records->ptr);
  ret->records.ptr = out;
  ret->records.len = kept;
  ret->rejected.ptr = rejected;
  ret->rejected.len = refused;
  return true;
}
