/* Native fast path of the OTLP trace decoder (collector/receiver/decode.py is the reference).

   decode() reads ExportTraceServiceRequest protobuf wire bytes directly and builds the same
   columns the reference builds: equal values of the same types, with the same sharing (one
   ResourceAttributes dict per resource, one scope name per scope, the empty tuple for no events
   or links). It handles the common, well-formed request completely. On anything unusual (bytes
   that are not protobuf, invalid UTF-8, a duplicated singular field, a span the reference would
   refuse, a value it would truncate, nesting past MAX_VALUE_DEPTH, groups, a field with an
   unexpected wire type) it returns None before anything is visible to the caller, and the
   caller runs the reference on the whole request. So the reference alone decides every
   refusal and repair, and this file only has to agree with it on requests it accepts.

   Safety on hostile bytes: every varint and length is bounds-checked against the enclosing
   message, recursion is bounded by MAX_VALUE_DEPTH, and every exit path releases what it made. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_VALUE_DEPTH 32 /* _wire.MAX_VALUE_DEPTH: levels of arrays and key-value lists */
#define MAX_TIME_NS 4294967295999999999ULL /* decode.MAX_TIME_NS: (1 << 32) * 1e9 - 1 */
#define NUM_COLUMNS 24

/* Column positions: BASE_COLUMNS in order, then _TraceFlags (decode.py checks the names). */
enum {
    C_TENANT, C_TIMESTAMP, C_TRACE_ID, C_SPAN_ID, C_PARENT_ID, C_TRACE_STATE, C_SPAN_NAME, C_SPAN_KIND,
    C_SERVICE, C_RES_ATTRS, C_SCOPE_NAME, C_SCOPE_VERSION, C_SPAN_ATTRS, C_DURATION, C_STATUS_CODE,
    C_STATUS_MESSAGE, C_EV_TS, C_EV_NAME, C_EV_ATTRS, C_LN_TRACE, C_LN_SPAN, C_LN_STATE, C_LN_ATTRS,
    C_FLAGS
};

/* Set once by configure(): the reference's own objects, so both paths use one source of truth. */
static PyObject *g_kinds[6], *g_statuses[3];
static PyObject *g_to_json, *g_note_empty, *g_note_clamp, *g_original_time_key, *g_service_key;
static PyObject *g_true, *g_false, *g_empty;

/* ---- wire reading ---------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} Reader;

typedef struct {
    uint32_t num;
    int wt;
    uint64_t v;          /* varint, fixed64 and fixed32 values */
    const uint8_t *p;    /* length-delimited value */
    size_t n;
} Field;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

HOT int read_varint(Reader *r, uint64_t *out) {
    if (r->p < r->end && *r->p < 0x80) { /* the common case: one byte */
        *out = *r->p++;
        return 0;
    }
    uint64_t value = 0;
    const uint8_t *p = r->p;
    for (int i = 0; i < 10; i++) {
        if (p >= r->end)
            return -1;
        uint8_t byte = *p++;
        if (i == 9 && byte > 1) /* more than 64 bits */
            return -1;
        value |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            r->p = p;
            *out = value;
            return 0;
        }
    }
    return -1;
}

HOT uint64_t load_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* 0: a field was read; 1: end of message; -1: malformed (or a group, which OTLP never uses). */
HOT int next_field(Reader *r, Field *f) {
    if (r->p >= r->end)
        return 1;
    uint64_t tag, len;
    const uint8_t *tag_start = r->p;
    /* protobuf refuses a tag of more than 5 bytes or 32 bits, even an overlong encoding of a small one */
    if (read_varint(r, &tag) || tag > UINT32_MAX || r->p - tag_start > 5)
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    f->v = 0;
    f->p = r->p;
    f->n = 0;
    if (f->num == 0)
        return -1;
    switch (f->wt) {
    case WT_VARINT:
        return read_varint(r, &f->v);
    case WT_I64:
        if (r->end - r->p < 8)
            return -1;
        f->v = load_le(r->p, 8);
        r->p += 8;
        return 0;
    case WT_LEN:
        tag_start = r->p; /* a length too: at most 5 bytes, below 2^31 */
        if (read_varint(r, &len) || r->p - tag_start > 5 || len >= INT32_MAX || len > (uint64_t)(r->end - r->p))
            return -1;
        f->p = r->p;
        f->n = (size_t)len;
        r->p += len;
        return 0;
    case WT_I32:
        if (r->end - r->p < 4)
            return -1;
        f->v = load_le(r->p, 4);
        r->p += 4;
        return 0;
    default:
        return -1;
    }
}

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F))
                return 0; /* overlong, or a surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
                return 0; /* overlong, or past U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* ---- per-call state -------------------------------------------------------------------------- */

/* Short strings repeat across the spans of a request (attribute keys, operation and model names,
   span names): one str object each, looked up by their bytes. Per call, so no state is shared
   between threads (the JSON encoder called below may let another thread run). */
#define CACHE_MIN_SLOTS 64 /* a power of two; sized to the request, up to CACHE_MAX_SLOTS */
#define CACHE_MAX_SLOTS 1024
#define CACHE_MAX_LEN 48

typedef struct {
    const uint8_t *p;
    uint32_t n, hash;
    PyObject *str;
} Slot;

typedef struct {
    const uint8_t *trace_id, *span_id, *parent_id, *trace_state, *name, *status_message;
    size_t trace_id_n, span_id_n, parent_id_n, trace_state_n, name_n, status_message_n;
    uint64_t start, end;
    uint32_t flags;
    int32_t kind, status_code;
    uint32_t attributes, events, links;
    /* Where the attributes, events and links lie in the span (from the first to the end of the last),
       so that reading them later skips the span's other fields. */
    const uint8_t *attr_from, *attr_to, *event_from, *event_to, *link_from, *link_to;
} SpanInfo;

typedef struct {
    PyObject *problems; /* note text -> count, in first-seen order like DecodeResult.note */
    Slot *cache;
    int cache_fill, cache_slots; /* at most 3/4 of the slots are filled, so a lookup always ends */
    SpanInfo *spans;
    size_t spans_cap;
    char *buf; /* scratch for JSON arrays of strings */
    size_t buf_cap;
    Py_ssize_t max_value_length;
} Ctx;

/* Functions returning int: 0 ok, -1 failed. A failure with no Python exception set means
   "use the reference"; one with an exception set is a real error (out of memory). */
#define BAIL (-1)

static int note(Ctx *ctx, PyObject *problem) {
    PyObject *count = PyDict_GetItemWithError(ctx->problems, problem);
    long n = 0;
    if (count != NULL)
        n = PyLong_AsLong(count);
    else if (PyErr_Occurred())
        return -1;
    PyObject *next = PyLong_FromLong(n + 1);
    if (next == NULL)
        return -1;
    int rc = PyDict_SetItem(ctx->problems, problem, next);
    Py_DECREF(next);
    return rc;
}

static uint32_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ULL;
    return (uint32_t)(h ^ (h >> 32));
}

/* A new reference to the str of UTF-8 bytes p[0:n]; NULL with no exception when not UTF-8. */
static PyObject *make_str(Ctx *ctx, const uint8_t *p, size_t n) {
    if (n == 0) {
        Py_INCREF(g_empty);
        return g_empty;
    }
    Slot *slot = NULL;
    uint32_t h = 0;
    if (n <= CACHE_MAX_LEN) {
        h = hash_bytes(p, n);
        for (uint32_t i = h;; i++) {
            Slot *s = &ctx->cache[i & (uint32_t)(ctx->cache_slots - 1)];
            if (s->str == NULL) {
                slot = ctx->cache_fill < ctx->cache_slots / 4 * 3 ? s : NULL;
                break;
            }
            if (s->hash == h && s->n == n && memcmp(s->p, p, n) == 0) {
                Py_INCREF(s->str);
                return s->str;
            }
        }
    }
    PyObject *str = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
    if (str == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            PyErr_Clear(); /* the reference repairs it and says so */
        return NULL;
    }
    if (slot != NULL) {
        slot->p = p;
        slot->n = (uint32_t)n;
        slot->hash = h;
        slot->str = str;
        Py_INCREF(str);
        ctx->cache_fill++;
    }
    return str;
}

static const char HEX[] = "0123456789abcdef";

static PyObject *hex_str(const uint8_t *p, size_t n) {
    PyObject *s = PyUnicode_New((Py_ssize_t)(2 * n), 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX[p[i] >> 4];
        out[2 * i + 1] = HEX[p[i] & 15];
    }
    return s;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64.b64encode(p[0:n]).decode("ascii") */
static PyObject *base64_str(const uint8_t *p, size_t n) {
    PyObject *s = PyUnicode_New((Py_ssize_t)(4 * ((n + 2) / 3)), 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = '=';
    }
    return s;
}

/* str(int): unsigned for times, signed for int_value. */
static PyObject *digits_str(uint64_t v, int negative) {
    char text[24];
    char *end = text + sizeof text, *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        *--p = '-';
    PyObject *s = PyUnicode_New(end - p, 127);
    if (s != NULL)
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)(end - p));
    return s;
}

static PyObject *uint_str(uint64_t v) {
    return digits_str(v, 0);
}

static PyObject *int_str(int64_t v) {
    return v < 0 ? digits_str(0 - (uint64_t)v, 1) : digits_str((uint64_t)v, 0);
}

/* repr(float): the same routine float.__repr__ uses. */
static PyObject *double_repr(double d) {
    char *text = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return NULL;
    PyObject *s = PyUnicode_FromString(text);
    PyMem_Free(text);
    return s;
}

static double bits_to_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ---- AnyValue -------------------------------------------------------------------------------- */

enum { AV_NONE = 0, AV_STRING = 1, AV_BOOL = 2, AV_INT = 3, AV_DOUBLE = 4, AV_ARRAY = 5, AV_KVLIST = 6,
       AV_BYTES = 7, AV_STRINDEX = 8 };

typedef struct {
    int kind;
    uint64_t v;
    const uint8_t *p;
    size_t n;
} AnyValue;

/* One AnyValue message. More than one member of the oneof (protobuf keeps the last, merging
   messages) is left to the reference. */
static int parse_any(const uint8_t *p, size_t n, AnyValue *av) {
    Reader r = {p, p + n};
    Field f;
    int rc, members = 0;
    av->kind = AV_NONE;
    while ((rc = next_field(&r, &f)) == 0) {
        int expect;
        switch (f.num) {
        case AV_STRING: case AV_ARRAY: case AV_KVLIST: case AV_BYTES: expect = WT_LEN; break;
        case AV_BOOL: case AV_INT: case AV_STRINDEX: expect = WT_VARINT; break;
        case AV_DOUBLE: expect = WT_I64; break;
        default: continue; /* unknown field: protobuf keeps it aside */
        }
        if (f.wt != expect || ++members > 1)
            return BAIL;
        av->kind = (int)f.num;
        av->v = f.v;
        av->p = f.p;
        av->n = f.n;
    }
    return rc < 0 ? BAIL : 0;
}

/* One KeyValue message: key bytes and, when present, the value's bytes. */
typedef struct {
    const uint8_t *key, *value;
    size_t key_n, value_n;
    int has_value;
} KeyValue;

static int parse_kv(const uint8_t *p, size_t n, KeyValue *kv) {
    Reader r = {p, p + n};
    Field f;
    int rc, seen = 0;
    kv->key = p;
    kv->key_n = 0;
    kv->has_value = 0;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num > 3)
            continue;
        if ((seen & (1 << f.num)) || f.wt != (f.num == 3 ? WT_VARINT : WT_LEN))
            return BAIL;
        seen |= 1 << f.num;
        if (f.num == 1) {
            kv->key = f.p;
            kv->key_n = f.n;
        } else if (f.num == 2) {
            kv->value = f.p;
            kv->value_n = f.n;
            kv->has_value = 1;
        } /* 3: key_strindex (profiles' string table), not used for traces */
    }
    return rc < 0 ? BAIL : 0;
}

/* Check an AnyValue that is parsed but never stored (instrumentation scope attributes). */
static int check_any(const uint8_t *p, size_t n, int depth) {
    AnyValue av;
    if (depth > MAX_VALUE_DEPTH || parse_any(p, n, &av))
        return BAIL;
    if (av.kind == AV_STRING)
        return utf8_valid(av.p, av.n) ? 0 : BAIL;
    if (av.kind != AV_ARRAY && av.kind != AV_KVLIST)
        return 0;
    Reader r = {av.p, av.p + av.n};
    Field f;
    int rc;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != 1)
            continue;
        if (f.wt != WT_LEN)
            return BAIL;
        if (av.kind == AV_ARRAY) {
            if (check_any(f.p, f.n, depth + 1))
                return BAIL;
        } else {
            KeyValue kv;
            if (parse_kv(f.p, f.n, &kv) || !utf8_valid(kv.key, kv.key_n))
                return BAIL;
            if (kv.has_value && check_any(kv.value, kv.value_n, depth + 1))
                return BAIL;
        }
    }
    return rc < 0 ? BAIL : 0;
}

static int check_attributes(const uint8_t *p, size_t n, uint32_t number) {
    Reader r = {p, p + n};
    Field f;
    int rc;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != number)
            continue;
        KeyValue kv;
        if (f.wt != WT_LEN || parse_kv(f.p, f.n, &kv) || !utf8_valid(kv.key, kv.key_n))
            return BAIL;
        if (kv.has_value && check_any(kv.value, kv.value_n, 1))
            return BAIL;
    }
    return rc < 0 ? BAIL : 0;
}

/* decode._plain: AnyValue -> plain Python value for JSON, refusing (by bailing) past the depth. */
static PyObject *plain(Ctx *ctx, const AnyValue *av, int depth) {
    if (depth > MAX_VALUE_DEPTH)
        return NULL;
    switch (av->kind) {
    case AV_STRING:
        return make_str(ctx, av->p, av->n);
    case AV_BOOL:
        return PyBool_FromLong(av->v != 0);
    case AV_INT:
        return PyLong_FromLongLong((long long)(int64_t)av->v);
    case AV_DOUBLE:
        return PyFloat_FromDouble(bits_to_double(av->v));
    case AV_BYTES:
        return base64_str(av->p, av->n);
    case AV_ARRAY:
    case AV_KVLIST:
        break;
    default:
        Py_RETURN_NONE;
    }
    PyObject *out = av->kind == AV_ARRAY ? PyList_New(0) : PyDict_New();
    if (out == NULL)
        return NULL;
    Reader r = {av->p, av->p + av->n};
    Field f;
    int rc;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != 1)
            continue;
        AnyValue child;
        PyObject *key = NULL, *value;
        if (f.wt != WT_LEN)
            goto fail;
        if (av->kind == AV_ARRAY) {
            if (parse_any(f.p, f.n, &child))
                goto fail;
        } else {
            KeyValue kv;
            if (parse_kv(f.p, f.n, &kv))
                goto fail;
            child.kind = AV_NONE;
            if (kv.has_value && parse_any(kv.value, kv.value_n, &child))
                goto fail;
            if ((key = make_str(ctx, kv.key, kv.key_n)) == NULL)
                goto fail;
        }
        value = plain(ctx, &child, depth + 1);
        if (value == NULL) {
            Py_XDECREF(key);
            goto fail;
        }
        rc = key == NULL ? PyList_Append(out, value) : PyDict_SetItem(out, key, value);
        Py_XDECREF(key);
        Py_DECREF(value);
        if (rc)
            goto fail;
    }
    if (rc < 0)
        goto fail;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static int buf_reserve(Ctx *ctx, size_t need) {
    if (need <= ctx->buf_cap)
        return 0;
    size_t cap = ctx->buf_cap ? ctx->buf_cap : 256;
    while (cap < need)
        cap *= 2;
    char *grown = PyMem_Realloc(ctx->buf, cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    ctx->buf = grown;
    ctx->buf_cap = cap;
    return 0;
}

/* Append the JSON string of UTF-8 bytes (json.encoder.encode_basestring: quotes, backslashes and
   control characters escaped, everything else kept) to ctx->buf at *len. */
static int json_string(Ctx *ctx, size_t *len, const uint8_t *s, size_t n) {
    if (buf_reserve(ctx, *len + 6 * n + 2))
        return -1;
    char *out = ctx->buf + *len;
    *out++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = HEX[c >> 4];
            *out++ = HEX[c & 15];
        }
    }
    *out++ = '"';
    *len = (size_t)(out - ctx->buf);
    return 0;
}

/* decode._as_text's array case when every element is a non-empty string: "[" + ",".join(...) + "]".
   Returns NULL with *other set when some element is of another kind (the caller takes the JSON path). */
static PyObject *string_array(Ctx *ctx, const AnyValue *av, int *other) {
    Reader r = {av->p, av->p + av->n};
    Field f;
    int rc;
    size_t len = 1;
    *other = 0;
    if (buf_reserve(ctx, 2))
        return NULL;
    ctx->buf[0] = '[';
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != 1)
            continue;
        AnyValue item;
        if (f.wt != WT_LEN || parse_any(f.p, f.n, &item))
            return NULL;
        if (item.kind != AV_STRING || item.n == 0) {
            *other = 1;
            return NULL;
        }
        if (!utf8_valid(item.p, item.n))
            return NULL;
        if (len > 1)
            ctx->buf[len++] = ',';
        if (json_string(ctx, &len, item.p, item.n))
            return NULL;
    }
    if (rc < 0 || buf_reserve(ctx, len + 1))
        return NULL;
    ctx->buf[len++] = ']';
    return PyUnicode_DecodeUTF8(ctx->buf, (Py_ssize_t)len, NULL);
}

/* decode._attributes' text for one value (which may be absent). */
static PyObject *value_text(Ctx *ctx, const KeyValue *kv) {
    AnyValue av;
    av.kind = AV_NONE;
    if (kv->has_value && parse_any(kv->value, kv->value_n, &av))
        return NULL;
    switch (av.kind) {
    case AV_STRING:
        return make_str(ctx, av.p, av.n);
    case AV_INT:
        return int_str((int64_t)av.v);
    case AV_BOOL:
        Py_INCREF(av.v ? g_true : g_false);
        return av.v ? g_true : g_false;
    case AV_DOUBLE:
        return double_repr(bits_to_double(av.v));
    case AV_BYTES:
        return base64_str(av.p, av.n);
    case AV_ARRAY:
    case AV_KVLIST: {
        if (av.kind == AV_ARRAY) {
            int other;
            PyObject *text = string_array(ctx, &av, &other);
            if (text != NULL || !other)
                return text;
        } /* otherwise the generic JSON rendering */
        PyObject *tree = plain(ctx, &av, 1);
        if (tree == NULL)
            return NULL;
        PyObject *text = PyObject_CallOneArg(g_to_json, tree);
        Py_DECREF(tree);
        return text;
    }
    default: /* unset, or a member traces do not use */
        if (note(ctx, g_note_empty))
            return NULL;
        Py_INCREF(g_empty);
        return g_empty;
    }
}

/* decode.Decoder._attributes over the fields `number` of message p[0:n] -> new dict; NULL to bail
   (a value the reference would truncate included). */
static PyObject *attributes(Ctx *ctx, const uint8_t *p, size_t n, uint32_t number) {
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    Reader r = {p, p + n};
    Field f;
    int rc;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != number)
            continue;
        KeyValue kv;
        if (f.wt != WT_LEN || parse_kv(f.p, f.n, &kv))
            goto fail;
        PyObject *key = make_str(ctx, kv.key, kv.key_n);
        if (key == NULL)
            goto fail;
        PyObject *text = value_text(ctx, &kv);
        if (text == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        int too_long = PyUnicode_GET_LENGTH(text) > ctx->max_value_length;
        rc = too_long ? -1 : PyDict_SetItem(out, key, text);
        Py_DECREF(key);
        Py_DECREF(text);
        if (rc)
            goto fail;
    }
    if (rc < 0)
        goto fail;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* ---- spans ----------------------------------------------------------------------------------- */

/* Span's top-level fields; attributes, events and links are only counted here. */
static int parse_span(const uint8_t *p, size_t n, SpanInfo *s) {
    static const int8_t wire[17] = {-1, WT_LEN, WT_LEN, WT_LEN, WT_LEN, WT_LEN, WT_VARINT, WT_I64, WT_I64,
                                    WT_LEN, WT_VARINT, WT_LEN, WT_VARINT, WT_LEN, WT_VARINT, WT_LEN, WT_I32};
    Reader r = {p, p + n};
    Field f;
    int rc;
    uint32_t seen = 0;
    memset(s, 0, sizeof *s);
    s->trace_id = s->span_id = s->parent_id = s->trace_state = s->name = s->status_message = p;
    const uint8_t *field_start = r.p;
    for (; (rc = next_field(&r, &f)) == 0; field_start = r.p) {
        if (f.num > 16)
            continue;
        if (f.wt != wire[f.num])
            return BAIL;
        if (f.num == 9 || f.num == 11 || f.num == 13) {
            uint32_t *count = f.num == 9 ? &s->attributes : f.num == 11 ? &s->events : &s->links;
            const uint8_t **from = f.num == 9 ? &s->attr_from : f.num == 11 ? &s->event_from : &s->link_from;
            const uint8_t **to = f.num == 9 ? &s->attr_to : f.num == 11 ? &s->event_to : &s->link_to;
            if ((*count)++ == 0)
                *from = field_start;
            *to = r.p;
            continue;
        }
        if (seen & (1u << f.num))
            return BAIL;
        seen |= 1u << f.num;
        switch (f.num) {
        case 1: s->trace_id = f.p; s->trace_id_n = f.n; break;
        case 2: s->span_id = f.p; s->span_id_n = f.n; break;
        case 3: s->trace_state = f.p; s->trace_state_n = f.n; break;
        case 4: s->parent_id = f.p; s->parent_id_n = f.n; break;
        case 5: s->name = f.p; s->name_n = f.n; break;
        case 6: s->kind = (int32_t)(uint32_t)f.v; break;
        case 7: s->start = f.v; break;
        case 8: s->end = f.v; break;
        case 16: s->flags = (uint32_t)f.v; break;
        case 15: { /* Status: message = 2, code = 3 */
            Reader sr = {f.p, f.p + f.n};
            Field g;
            int src, sseen = 0;
            while ((src = next_field(&sr, &g)) == 0) {
                if (g.num != 2 && g.num != 3)
                    continue;
                if ((sseen & (1 << g.num)) || g.wt != (g.num == 2 ? WT_LEN : WT_VARINT))
                    return BAIL;
                sseen |= 1 << g.num;
                if (g.num == 2) {
                    s->status_message = g.p;
                    s->status_message_n = g.n;
                } else {
                    s->status_code = (int32_t)(uint32_t)g.v;
                }
            }
            if (src < 0)
                return BAIL;
            break;
        }
        default: break; /* dropped counts */
        }
    }
    return rc < 0 ? BAIL : 0;
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* The reference keeps this span as it is (no refusal of any kind). */
static int span_ok(const SpanInfo *s, Py_ssize_t max_attributes, uint64_t low, uint64_t high) {
    return s->trace_id_n == 16 && !all_zero(s->trace_id, 16) && s->span_id_n == 8 && !all_zero(s->span_id, 8) &&
           (s->parent_id_n == 0 || s->parent_id_n == 8) && (Py_ssize_t)s->attributes <= max_attributes &&
           s->start >= low && s->start <= high && s->end <= high;
}

static int append_new(PyObject *list, PyObject *item) {
    if (item == NULL)
        return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

static PyObject *new_int(uint64_t v) {
    return PyLong_FromUnsignedLongLong(v);
}

/* One event: its time, name and attributes dict. */
static int parse_event(Ctx *ctx, const uint8_t *p, size_t n, uint64_t *time, PyObject **name,
                       PyObject **attrs) {
    Reader r = {p, p + n};
    Field f;
    int rc, seen = 0;
    const uint8_t *name_p = p;
    size_t name_n = 0;
    *time = 0;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num > 4 || f.num == 3)
            continue; /* attributes are read below, in order */
        if ((seen & (1 << f.num)) || f.wt != (f.num == 1 ? WT_I64 : f.num == 2 ? WT_LEN : WT_VARINT))
            return BAIL;
        seen |= 1 << f.num;
        if (f.num == 1)
            *time = f.v;
        else if (f.num == 2) {
            name_p = f.p;
            name_n = f.n;
        }
    }
    if (rc < 0)
        return BAIL;
    if ((*name = make_str(ctx, name_p, name_n)) == NULL)
        return BAIL;
    if ((*attrs = attributes(ctx, p, n, 3)) == NULL) {
        Py_CLEAR(*name);
        return BAIL;
    }
    return 0;
}

/* decode._append's events for one span: three lists, or () for each when it has none. */
static int append_events(Ctx *ctx, PyObject **columns, const SpanInfo *s) {
    if (s->events == 0) {
        PyObject *empty = PyTuple_New(0);
        int rc = PyList_Append(columns[C_EV_TS], empty) || PyList_Append(columns[C_EV_NAME], empty) ||
                 PyList_Append(columns[C_EV_ATTRS], empty);
        Py_DECREF(empty);
        return rc ? -1 : 0;
    }
    PyObject *times = PyList_New(0), *names = PyList_New(0), *maps = PyList_New(0);
    if (times == NULL || names == NULL || maps == NULL)
        goto fail;
    Reader r = {s->event_from, s->event_to};
    Field f;
    int rc, clamp = 0;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != 11)
            continue;
        uint64_t t;
        PyObject *name, *attrs;
        if (parse_event(ctx, f.p, f.n, &t, &name, &attrs))
            goto fail;
        /* each call takes its item whatever happens, so none leaks when one fails */
        int failed = append_new(names, name);
        failed |= append_new(maps, attrs);
        failed |= append_new(times, new_int(t));
        if (failed)
            goto fail;
        clamp |= t < 1 || t > MAX_TIME_NS;
    }
    if (rc < 0)
        goto fail;
    if (clamp) { /* decode._clamp_event_times */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(times); i++) {
            uint64_t t = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(times, i));
            if (t >= 1 && t <= MAX_TIME_NS)
                continue;
            PyObject *start = new_int(s->start), *copy = PyDict_Copy(PyList_GET_ITEM(maps, i));
            PyObject *original = uint_str(t);
            if (start == NULL || copy == NULL || original == NULL ||
                PyDict_SetItem(copy, g_original_time_key, original)) {
                Py_XDECREF(start);
                Py_XDECREF(copy);
                Py_XDECREF(original);
                goto fail;
            }
            Py_DECREF(original);
            PyList_SetItem(times, i, start); /* steals */
            PyList_SetItem(maps, i, copy);
            if (note(ctx, g_note_clamp))
                goto fail;
        }
    }
    rc = append_new(columns[C_EV_TS], times);
    times = NULL;
    if (rc || (rc = append_new(columns[C_EV_NAME], names), names = NULL, rc))
        goto fail;
    rc = append_new(columns[C_EV_ATTRS], maps);
    maps = NULL;
    return rc;
fail:
    Py_XDECREF(times);
    Py_XDECREF(names);
    Py_XDECREF(maps);
    return -1;
}

/* decode._append's links for one span. */
static int append_links(Ctx *ctx, PyObject **columns, const SpanInfo *s) {
    PyObject *lists[4] = {NULL, NULL, NULL, NULL};
    if (s->links == 0) {
        PyObject *empty = PyTuple_New(0);
        int rc = 0;
        for (int c = 0; c < 4; c++)
            rc = rc || PyList_Append(columns[C_LN_TRACE + c], empty);
        Py_DECREF(empty);
        return rc ? -1 : 0;
    }
    for (int c = 0; c < 4; c++)
        if ((lists[c] = PyList_New(0)) == NULL)
            goto fail;
    Reader r = {s->link_from, s->link_to};
    Field f;
    int rc;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != 13)
            continue;
        Reader lr = {f.p, f.p + f.n};
        Field g;
        int lrc, seen = 0;
        const uint8_t *ids[3] = {f.p, f.p, f.p};
        size_t lens[3] = {0, 0, 0};
        while ((lrc = next_field(&lr, &g)) == 0) {
            if (g.num > 6 || g.num == 4)
                continue; /* attributes are read below */
            int expect = g.num <= 3 ? WT_LEN : g.num == 5 ? WT_VARINT : WT_I32;
            if ((seen & (1 << g.num)) || g.wt != expect)
                goto fail;
            seen |= 1 << g.num;
            if (g.num <= 3) {
                ids[g.num - 1] = g.p;
                lens[g.num - 1] = g.n;
            }
        }
        if (lrc < 0)
            goto fail;
        if (append_new(lists[0], hex_str(ids[0], lens[0])) || append_new(lists[1], hex_str(ids[1], lens[1])))
            goto fail;
        PyObject *state = make_str(ctx, ids[2], lens[2]);
        if (state == NULL || append_new(lists[2], state))
            goto fail;
        if (append_new(lists[3], attributes(ctx, f.p, f.n, 4)))
            goto fail;
    }
    if (rc < 0)
        goto fail;
    for (int c = 0; c < 4; c++) {
        rc = append_new(columns[C_LN_TRACE + c], lists[c]);
        lists[c] = NULL;
        if (rc)
            goto fail;
    }
    return 0;
fail:
    for (int c = 0; c < 4; c++)
        Py_XDECREF(lists[c]);
    return -1;
}

typedef struct {
    PyObject *tenant;
    uint64_t low, high;
    Py_ssize_t max_spans, max_attributes;
    Py_ssize_t seen; /* spans of the request so far */
} Limits;

/* ResourceSpans and ScopeSpans share a shape: 1 = the resource or scope (one message), 2 = what it
   holds (repeated), 3 = schema_url. Checks the fields and finds field 1 (empty when absent). */
static int container_head(const uint8_t *p, size_t n, const uint8_t **head, size_t *head_n) {
    Reader r = {p, p + n};
    Field f;
    int rc, have_head = 0;
    *head = p;
    *head_n = 0;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num > 3)
            continue;
        if (f.wt != WT_LEN)
            return BAIL;
        if (f.num == 1) {
            if (have_head++)
                return BAIL;
            *head = f.p;
            *head_n = f.n;
        } else if (f.num == 3 && !utf8_valid(f.p, f.n)) {
            return BAIL;
        }
    }
    return rc < 0 ? BAIL : 0;
}

/* One ScopeSpans message of a resource. */
static int scope_spans(Ctx *ctx, PyObject **columns, Limits *lim, const uint8_t *p, size_t n,
                       PyObject *service, PyObject *res_attrs) {
    Reader r = {p, p + n};
    Field f;
    int rc;
    size_t count = 0;
    const uint8_t *scope;
    size_t scope_n;
    if (container_head(p, n, &scope, &scope_n))
        return BAIL;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num == 2) {
            if (count == ctx->spans_cap) {
                size_t cap = ctx->spans_cap ? 2 * ctx->spans_cap : 64;
                SpanInfo *grown = PyMem_Realloc(ctx->spans, cap * sizeof(SpanInfo));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                ctx->spans = grown;
                ctx->spans_cap = cap;
            }
            if (parse_span(f.p, f.n, &ctx->spans[count]))
                return BAIL;
            count++;
        }
    }
    if (rc < 0)
        return BAIL;
    /* InstrumentationScope: name = 1, version = 2, attributes = 3 (parsed, never stored), dropped = 4 */
    const uint8_t *name = scope, *version = scope;
    size_t name_n = 0, version_n = 0;
    int seen = 0;
    r.p = scope;
    r.end = scope + scope_n;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num > 4 || f.num == 3)
            continue;
        if ((seen & (1 << f.num)) || f.wt != (f.num == 4 ? WT_VARINT : WT_LEN))
            return BAIL;
        seen |= 1 << f.num;
        if (f.num == 1) {
            name = f.p;
            name_n = f.n;
        } else if (f.num == 2) {
            version = f.p;
            version_n = f.n;
        }
    }
    if (rc < 0 || check_attributes(scope, scope_n, 3))
        return BAIL;
    if (!utf8_valid(name, name_n) || !utf8_valid(version, version_n))
        return BAIL;
    if (count == 0)
        return 0;
    if ((Py_ssize_t)count > lim->max_spans - lim->seen)
        return BAIL;
    for (size_t i = 0; i < count; i++)
        if (!span_ok(&ctx->spans[i], lim->max_attributes, lim->low, lim->high))
            return BAIL;
    lim->seen += (Py_ssize_t)count;

    PyObject *scope_name = make_str(ctx, name, name_n), *scope_version = make_str(ctx, version, version_n);
    PyObject *span_attrs = PyList_New((Py_ssize_t)count);
    if (scope_name == NULL || scope_version == NULL || span_attrs == NULL)
        goto fail;
    /* Rendered first, as the reference does: the order of problem notes follows it. */
    for (size_t i = 0; i < count; i++) {
        const SpanInfo *s = &ctx->spans[i];
        PyObject *attrs = s->attributes ? attributes(ctx, s->attr_from, (size_t)(s->attr_to - s->attr_from), 9)
                                        : PyDict_New();
        if (attrs == NULL)
            goto fail;
        PyList_SET_ITEM(span_attrs, (Py_ssize_t)i, attrs);
    }
    for (size_t i = 0; i < count; i++) {
        const SpanInfo *s = &ctx->spans[i];
        uint32_t kind = (uint32_t)s->kind, code = (uint32_t)s->status_code;
        if (PyList_Append(columns[C_TENANT], lim->tenant) ||
            append_new(columns[C_TIMESTAMP], new_int(s->start)) ||
            append_new(columns[C_DURATION], new_int(s->end > s->start ? s->end - s->start : 0)) ||
            append_new(columns[C_TRACE_ID], hex_str(s->trace_id, 16)) ||
            append_new(columns[C_SPAN_ID], hex_str(s->span_id, 8)) ||
            append_new(columns[C_PARENT_ID], hex_str(s->parent_id, s->parent_id_n)) ||
            append_new(columns[C_TRACE_STATE], make_str(ctx, s->trace_state, s->trace_state_n)) ||
            append_new(columns[C_FLAGS], PyLong_FromUnsignedLong(s->flags)) ||
            append_new(columns[C_SPAN_NAME], make_str(ctx, s->name, s->name_n)) ||
            PyList_Append(columns[C_SPAN_KIND], g_kinds[kind < 6 ? kind : 0]) ||
            PyList_Append(columns[C_SERVICE], service) || PyList_Append(columns[C_RES_ATTRS], res_attrs) ||
            PyList_Append(columns[C_SCOPE_NAME], scope_name) ||
            PyList_Append(columns[C_SCOPE_VERSION], scope_version) ||
            PyList_Append(columns[C_SPAN_ATTRS], PyList_GET_ITEM(span_attrs, (Py_ssize_t)i)) ||
            PyList_Append(columns[C_STATUS_CODE], g_statuses[code < 3 ? code : 0]) ||
            append_new(columns[C_STATUS_MESSAGE], make_str(ctx, s->status_message, s->status_message_n)))
            goto fail;
    }
    for (size_t i = 0; i < count; i++)
        if (append_events(ctx, columns, &ctx->spans[i]))
            goto fail;
    for (size_t i = 0; i < count; i++)
        if (append_links(ctx, columns, &ctx->spans[i]))
            goto fail;
    Py_DECREF(scope_name);
    Py_DECREF(scope_version);
    Py_DECREF(span_attrs);
    return 0;
fail:
    Py_XDECREF(scope_name);
    Py_XDECREF(scope_version);
    Py_XDECREF(span_attrs);
    return -1;
}

/* EntityRef (Resource.entity_refs): strings only, parsed and never stored. */
static int check_entity_ref(const uint8_t *p, size_t n) {
    Reader r = {p, p + n};
    Field f;
    int rc;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num > 4)
            continue;
        if (f.wt != WT_LEN || !utf8_valid(f.p, f.n))
            return BAIL;
    }
    return rc < 0 ? BAIL : 0;
}

static int resource_spans(Ctx *ctx, PyObject **columns, Limits *lim, const uint8_t *p, size_t n) {
    Reader r = {NULL, NULL};
    Field f;
    int rc;
    const uint8_t *resource;
    size_t resource_n;
    if (container_head(p, n, &resource, &resource_n))
        return BAIL;
    /* Resource: attributes = 1, dropped_attributes_count = 2, entity_refs = 3 */
    r.p = resource;
    r.end = resource + resource_n;
    int dropped_seen = 0;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num == 2) {
            if (dropped_seen++ || f.wt != WT_VARINT)
                return BAIL;
        } else if (f.num == 3) {
            if (f.wt != WT_LEN || check_entity_ref(f.p, f.n))
                return BAIL;
        }
    }
    if (rc < 0)
        return BAIL;
    PyObject *res_attrs = attributes(ctx, resource, resource_n, 1);
    if (res_attrs == NULL)
        return -1;
    PyObject *service = PyDict_GetItemWithError(res_attrs, g_service_key);
    if (service == NULL && PyErr_Occurred()) {
        Py_DECREF(res_attrs);
        return -1;
    }
    service = service ? service : g_empty;
    Py_INCREF(service);
    r.p = p;
    r.end = p + n;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num == 2 && scope_spans(ctx, columns, lim, f.p, f.n, service, res_attrs)) {
            rc = -1;
            break;
        }
    }
    Py_DECREF(service);
    Py_DECREF(res_attrs);
    return rc < 0 ? -1 : 0;
}

/* ---- module functions ------------------------------------------------------------------------ */

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer data;
    PyObject *tenant;
    unsigned long long low, high;
    Py_ssize_t max_spans, max_attributes, max_value_length;
    if (g_to_json == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastdecode.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*UKKnnn:decode", &data, &tenant, &low, &high, &max_spans, &max_attributes,
                          &max_value_length))
        return NULL;
    Ctx ctx = {0};
    ctx.max_value_length = max_value_length;
    Limits lim = {tenant, low, high, max_spans, max_attributes, 0};
    PyObject *columns[NUM_COLUMNS] = {NULL};
    PyObject *result = NULL;
    int rc = 0;
    ctx.problems = PyDict_New();
    /* about one slot per 32 bytes of request: a one-span request need not clear a large table */
    ctx.cache_slots = CACHE_MIN_SLOTS;
    while (ctx.cache_slots < CACHE_MAX_SLOTS && (Py_ssize_t)ctx.cache_slots * 32 < data.len)
        ctx.cache_slots *= 2;
    ctx.cache = PyMem_Calloc((size_t)ctx.cache_slots, sizeof(Slot));
    if (ctx.problems == NULL || ctx.cache == NULL) {
        if (ctx.cache == NULL)
            PyErr_NoMemory();
        goto done;
    }
    for (int c = 0; c < NUM_COLUMNS; c++)
        if ((columns[c] = PyList_New(0)) == NULL)
            goto done;
    /* ExportTraceServiceRequest: resource_spans = 1 */
    Reader r = {data.buf, (const uint8_t *)data.buf + data.len};
    Field f;
    while ((rc = next_field(&r, &f)) == 0) {
        if (f.num != 1)
            continue;
        if (f.wt != WT_LEN || resource_spans(&ctx, columns, &lim, f.p, f.n)) {
            rc = -1;
            break;
        }
    }
    if (rc < 0) {
        if (PyErr_Occurred())
            goto done; /* a real error: out of memory */
        result = Py_None; /* the reference decides */
        Py_INCREF(result);
        goto done;
    }
    PyObject *tuple = PyTuple_New(NUM_COLUMNS);
    if (tuple == NULL)
        goto done;
    for (int c = 0; c < NUM_COLUMNS; c++) {
        PyTuple_SET_ITEM(tuple, c, columns[c]);
        columns[c] = NULL;
    }
    result = PyTuple_Pack(2, tuple, ctx.problems);
    Py_DECREF(tuple);
done:
    for (int c = 0; c < NUM_COLUMNS; c++)
        Py_XDECREF(columns[c]);
    if (ctx.cache != NULL) {
        for (int i = 0; i < ctx.cache_slots; i++)
            Py_XDECREF(ctx.cache[i].str);
        PyMem_Free(ctx.cache);
    }
    PyMem_Free(ctx.spans);
    PyMem_Free(ctx.buf);
    Py_XDECREF(ctx.problems);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *kinds, *statuses, *to_json, *note_empty, *note_clamp, *original_time_key, *service_key;
    if (!PyArg_ParseTuple(args, "O!O!OUUUU:configure", &PyTuple_Type, &kinds, &PyTuple_Type, &statuses, &to_json,
                          &note_empty, &note_clamp, &original_time_key, &service_key))
        return NULL;
    if (PyTuple_GET_SIZE(kinds) != 6 || PyTuple_GET_SIZE(statuses) != 3) {
        PyErr_SetString(PyExc_ValueError, "configure: expected 6 span kind names and 3 status code names");
        return NULL;
    }
    for (int i = 0; i < 6; i++) {
        PyObject *name = PyTuple_GET_ITEM(kinds, i);
        Py_INCREF(name);
        Py_XSETREF(g_kinds[i], name);
    }
    for (int i = 0; i < 3; i++) {
        PyObject *name = PyTuple_GET_ITEM(statuses, i);
        Py_INCREF(name);
        Py_XSETREF(g_statuses[i], name);
    }
    Py_INCREF(to_json);
    Py_XSETREF(g_to_json, to_json);
    Py_INCREF(note_empty);
    Py_XSETREF(g_note_empty, note_empty);
    Py_INCREF(note_clamp);
    Py_XSETREF(g_note_clamp, note_clamp);
    Py_INCREF(original_time_key);
    Py_XSETREF(g_original_time_key, original_time_key);
    Py_INCREF(service_key);
    Py_XSETREF(g_service_key, service_key);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(data, tenant, low_ns, high_ns, max_spans, max_attributes, max_value_length)\n"
     "-> (columns tuple, problems dict), or None when the reference decoder must decide."},
    {"configure", configure, METH_VARARGS,
     "configure(span_kinds, status_codes, to_json, note_empty, note_clamp, original_time_key, service_key)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fastdecode",
    .m_doc = "Native fast path of spanhouse's OTLP trace decoder.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fastdecode(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    g_true = PyUnicode_InternFromString("true");
    g_false = PyUnicode_InternFromString("false");
    g_empty = PyUnicode_New(0, 0);
    /* Fields the decoder knows per message (decode.py compares them with the installed schema). */
    PyObject *known = Py_BuildValue(
        "{s:(i),s:(iii),s:(iii),s:(iii),s:(iiii),s:(iiiiiiiiiiiiiiii),s:(iiii),s:(iiiiii),s:(ii),"
        "s:(iii),s:(iiiiiiii),s:(i),s:(i),s:(iiii)}",
        "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest", 1,
        "opentelemetry.proto.trace.v1.ResourceSpans", 1, 2, 3,
        "opentelemetry.proto.resource.v1.Resource", 1, 2, 3,
        "opentelemetry.proto.trace.v1.ScopeSpans", 1, 2, 3,
        "opentelemetry.proto.common.v1.InstrumentationScope", 1, 2, 3, 4,
        "opentelemetry.proto.trace.v1.Span", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        "opentelemetry.proto.trace.v1.Span.Event", 1, 2, 3, 4,
        "opentelemetry.proto.trace.v1.Span.Link", 1, 2, 3, 4, 5, 6,
        "opentelemetry.proto.trace.v1.Status", 2, 3,
        "opentelemetry.proto.common.v1.KeyValue", 1, 2, 3,
        "opentelemetry.proto.common.v1.AnyValue", 1, 2, 3, 4, 5, 6, 7, 8,
        "opentelemetry.proto.common.v1.ArrayValue", 1,
        "opentelemetry.proto.common.v1.KeyValueList", 1,
        "opentelemetry.proto.common.v1.EntityRef", 1, 2, 3, 4);
    if (g_true == NULL || g_false == NULL || g_empty == NULL || known == NULL ||
        PyModule_AddObjectRef(m, "KNOWN_FIELDS", known) < 0 ||
        PyModule_AddIntConstant(m, "MAX_VALUE_DEPTH", MAX_VALUE_DEPTH) < 0) {
        Py_XDECREF(known);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(known);
    return m;
}
