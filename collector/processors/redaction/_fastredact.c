/* The confirm-and-replace step of the redactor for the e-mail, phone and card detectors, in C.

   redact(text, hits, table, fold, cap) -> (new_text, ((rule_id, replaced), ...)) | None

   `hits` maps rule id -> the end offsets of its trigger in `text` (the search windows, see
   engine._windows); `table[rule_id]` is (kind, placeholder) for a rule replayed here (kind 0 = email,
   1 = credit_card, 2 = phone), None for any other; `fold` and `cap` are Redactor._redact_once's.
   The result is byte for byte what Redactor._redact_once gives for such a value: _matches + _apply,
   with the quote check of _redact_json_text for JSON text, the cap for plain text. Each detector's
   expression is
   replayed here as the backtracking search Python's `re` runs (same order of alternatives and
   repeats, same lookarounds, `endpos` seen as the end of the text), its validator as the same
   arithmetic, then the same window, shrink and overlap rules.

   None means "not decided here": a rule only Python confirms, text that is not ASCII or holds a
   backslash or (with fold) a percent sign, a match outside the JSON strings, a value the cap
   reaches; the Python path then handles the value. Only ASCII text is taken, so
   `\w` is [A-Za-z0-9_] and offsets are characters. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define K_EMAIL 0
#define K_CARD 1
#define K_PHONE 2
#define MAX_SPECS 8

typedef Py_ssize_t ssz;

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static inline int is_word(unsigned char c) { return is_alnum(c) || c == '_'; }

/* ---- e-mail ------------------------------------------------------------------------------------ */
/* (?<![\w.%+-])[\w+-](?:[\w.+-]{0,62}[\w+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+
   [A-Za-z]{2,24}(?![\w-])
   The local part and each label run up to a character outside their class, so each has one
   possible extent; only the number of labels backtracks (most first). */
static ssz email_at(const unsigned char *s, ssz st, ssz endpos) {
    unsigned char c = s[st];
    if (!(is_word(c) || c == '+' || c == '-')) return -1;
    if (st > 0) {
        unsigned char b = s[st - 1];
        if (is_word(b) || b == '.' || b == '%' || b == '+' || b == '-') return -1;
    }
    ssz i = st;
    while (i < endpos && (is_word(s[i]) || s[i] == '.' || s[i] == '+' || s[i] == '-')) i++;
    if (i >= endpos || s[i] != '@') return -1;
    ssz len = i - st;
    if (len < 1 || len > 64) return -1;
    if (len >= 2 && s[i - 1] == '.') return -1;
    ssz label_ends[64];
    ssz *after = label_ends;
    ssz cap = 64, k = 0;
    ssz *heap = NULL;
    ssz p = i + 1;
    for (;;) {
        if (p >= endpos || !is_alnum(s[p])) break;
        ssz q = p;
        while (q < endpos && (is_alnum(s[q]) || s[q] == '-')) q++;
        if (q >= endpos || s[q] != '.') break;
        if (q - p > 63 || !is_alnum(s[q - 1])) break;
        if (k == cap) {
            ssz *grown = (ssz *)malloc(sizeof(ssz) * (size_t)cap * 2);
            if (grown == NULL) { free(heap); return -2; }
            memcpy(grown, after, sizeof(ssz) * (size_t)k);
            free(heap);
            heap = after = grown;
            cap *= 2;
        }
        after[k++] = q + 1;
        p = q + 1;
    }
    ssz result = -1;
    for (ssz j = k - 1; j >= 0 && result < 0; j--) {
        ssz t = after[j];
        ssz run = 0;
        while (t + run < endpos && run < 24 && is_alpha(s[t + run])) run++;
        for (ssz n = run; n >= 2; n--) {
            ssz e = t + n;
            if (e < endpos && (is_word(s[e]) || s[e] == '-')) continue;
            result = e;
            break;
        }
    }
    free(heap);
    return result;
}

/* ---- card -------------------------------------------------------------------------------------- */
/* (?<![\d.,%-])\d(?:[ -]?\d){12,18}(?![\d-]|[.,]\d); with req >= 0 the match must end there
   (a fullmatch up to req). Each repeat can take its characters one way only. */
static ssz card_at(const unsigned char *s, ssz st, ssz endpos, ssz req) {
    if (!is_digit(s[st])) return -1;
    if (st > 0) {
        unsigned char b = s[st - 1];
        if (is_digit(b) || b == '.' || b == ',' || b == '%' || b == '-') return -1;
    }
    ssz ends[19];
    ssz i = st + 1, count = 0;
    while (count < 18) {
        if (i + 1 < endpos && (s[i] == ' ' || s[i] == '-') && is_digit(s[i + 1])) i += 2;
        else if (i < endpos && is_digit(s[i])) i += 1;
        else break;
        ends[++count] = i;
    }
    for (ssz c = count; c >= 12; c--) {
        ssz e = ends[c];
        if (req >= 0) {
            if (e == req) return e;
            continue;
        }
        if (e < endpos && (is_digit(s[e]) || s[e] == '-')) continue;
        if (e + 1 < endpos && (s[e] == '.' || s[e] == ',') && is_digit(s[e + 1])) continue;
        return e;
    }
    return -1;
}

static int luhn_ok(const char *digits, ssz n) {
    int total = 0;
    for (ssz i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        total += d;
    }
    return total % 10 == 0;
}

/* detectors._card_ok */
static int card_ok(const unsigned char *s, ssz a, ssz b) {
    char digits[64];
    ssz n = 0;
    unsigned char sep = 0;
    for (ssz i = a; i < b; i++) {
        if (is_digit(s[i])) {
            if (n >= 63) return 0;
            digits[n++] = (char)s[i];
        } else if (sep == 0) {
            sep = s[i];
        } else if (sep != s[i]) {
            return 0;
        }
    }
    if (n < 13 || n > 19) return 0;
    char d0 = digits[0], d1 = digits[1];
    int prefix = d0 == '4' || (d0 == '5' && d1 >= '0' && d1 <= '8') || (d0 == '2' && d1 >= '2' && d1 <= '7')
                 || (d0 == '3' && (d1 == '0' || (d1 >= '4' && d1 <= '9'))) ||
                 (d0 == '6' && (d1 == '0' || d1 == '2' || d1 == '4' || d1 == '5'));
    if (!prefix) return 0;
    if (sep) {
        ssz groups[64];
        ssz g = 0, run = 0;
        for (ssz i = a; i < b; i++) {
            if (s[i] == sep) {
                groups[g++] = run;
                run = 0;
            } else {
                run++;
            }
        }
        groups[g++] = run;
        int amex = g == 3 && groups[0] == 4 && groups[1] == 6 && (groups[2] == 5 || groups[2] == 4);
        if (!amex) {
            for (ssz j = 0; j < g - 1; j++)
                if (groups[j] != 4) return 0;
        }
    }
    return luhn_ok(digits, n);
}

/* ---- phone ------------------------------------------------------------------------------------- */
static inline int phone_tail_ok(const unsigned char *s, ssz e, ssz endpos, ssz req) {
    if (req >= 0) return e == req;
    if (e < endpos && (is_word(s[e]) || s[e] == '-')) return 0;
    if (e + 1 < endpos && (s[e] == '.' || s[e] == ',') && is_digit(s[e + 1])) return 0;
    return 1;
}

static inline int is_sep3(unsigned char c) { return c == ' ' || c == '.' || c == '-'; }

static inline ssz digit_run(const unsigned char *s, ssz p, ssz endpos, ssz most) {
    ssz n = 0;
    while (p + n < endpos && n < most && is_digit(s[p + n])) n++;
    return n;
}

/* (?:[ .-]?\d{2,4}){count..5} then the lookahead: greedy, another repeat tried before stopping. */
static ssz plus_groups(const unsigned char *s, ssz p, int count, ssz endpos, ssz req) {
    if (count < 5) {
        for (int with_sep = 1; with_sep >= 0; with_sep--) {
            ssz q = p;
            if (with_sep) {
                if (q < endpos && is_sep3(s[q])) q++;
                else continue;
            }
            ssz run = digit_run(s, q, endpos, 4);
            for (ssz n = run; n >= 2; n--) {
                ssz e = plus_groups(s, q + n, count + 1, endpos, req);
                if (e >= 0) return e;
            }
        }
    }
    if (count >= 1 && phone_tail_ok(s, p, endpos, req)) return p;
    return -1;
}

/* \+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?)(?:[ .-]?\d{2,4}){1,5} */
static ssz phone_plus(const unsigned char *s, ssz st, ssz endpos, ssz req) {
    ssz p = st + 1;
    ssz run = digit_run(s, p, endpos, 3);
    for (ssz a = run; a >= 1; a--) {
        ssz p1 = p + a;
        for (int with_sep = 1; with_sep >= 0; with_sep--) {
            ssz p2 = p1;
            if (with_sep) {
                if (p2 < endpos && is_sep3(s[p2])) p2++;
                else continue;
            }
            for (int paren = 1; paren >= 0; paren--) {
                ssz p3 = p2;
                if (paren) {
                    if (p3 < endpos && s[p3] == '(') p3++;
                    else continue;
                }
                ssz run2 = digit_run(s, p3, endpos, 4);
                for (ssz b = run2; b >= 1; b--) {
                    ssz p4 = p3 + b;
                    for (int close = 1; close >= 0; close--) {
                        ssz p5 = p4;
                        if (close) {
                            if (p5 < endpos && s[p5] == ')') p5++;
                            else continue;
                        }
                        ssz e = plus_groups(s, p5, 0, endpos, req);
                        if (e >= 0) return e;
                    }
                }
            }
        }
    }
    return -1;
}

/* \(\d{3}\) ?\d{3}[ .-]\d{4} */
static ssz phone_paren(const unsigned char *s, ssz st, ssz endpos, ssz req) {
    ssz p = st + 1;
    if (digit_run(s, p, endpos, 3) != 3) return -1;
    p += 3;
    if (p >= endpos || s[p] != ')') return -1;
    p++;
    for (int space = 1; space >= 0; space--) {
        ssz q = p;
        if (space) {
            if (q < endpos && s[q] == ' ') q++;
            else continue;
        }
        if (digit_run(s, q, endpos, 3) != 3) continue;
        q += 3;
        if (q >= endpos || !is_sep3(s[q])) continue;
        q++;
        if (digit_run(s, q, endpos, 4) != 4) continue;
        q += 4;
        if (phone_tail_ok(s, q, endpos, req)) return q;
    }
    return -1;
}

/* [2-9]\d{2}([ .-])\d{3}\1\d{4} */
static ssz phone_three(const unsigned char *s, ssz st, ssz endpos, ssz req) {
    ssz p = st;
    if (digit_run(s, p, endpos, 3) != 3) return -1;
    p += 3;
    if (p >= endpos || !is_sep3(s[p])) return -1;
    unsigned char sep = s[p++];
    if (digit_run(s, p, endpos, 3) != 3) return -1;
    p += 3;
    if (p >= endpos || s[p] != sep) return -1;
    p++;
    if (digit_run(s, p, endpos, 4) != 4) return -1;
    p += 4;
    return phone_tail_ok(s, p, endpos, req) ? p : -1;
}

/* (?:\2\d{2,4}){count..3} then the lookahead */
static ssz zero_groups(const unsigned char *s, ssz p, int count, unsigned char sep, ssz endpos, ssz req) {
    if (count < 3 && p < endpos && s[p] == sep) {
        ssz run = digit_run(s, p + 1, endpos, 4);
        for (ssz n = run; n >= 2; n--) {
            ssz e = zero_groups(s, p + 1 + n, count + 1, sep, endpos, req);
            if (e >= 0) return e;
        }
    }
    return phone_tail_ok(s, p, endpos, req) ? p : -1;
}

/* 0\d{1,4}([ -])\d{2,8}(?:\2\d{2,4}){0,3} */
static ssz phone_zero(const unsigned char *s, ssz st, ssz endpos, ssz req) {
    ssz p = st + 1;
    ssz run = digit_run(s, p, endpos, 4);
    for (ssz a = run; a >= 1; a--) {
        ssz p1 = p + a;
        if (p1 >= endpos || (s[p1] != ' ' && s[p1] != '-')) continue;
        unsigned char sep = s[p1];
        ssz q = p1 + 1;
        ssz run2 = digit_run(s, q, endpos, 8);
        for (ssz b = run2; b >= 2; b--) {
            ssz e = zero_groups(s, q + b, 0, sep, endpos, req);
            if (e >= 0) return e;
        }
    }
    return -1;
}

/* The four alternatives in their order; each starts with its own character, so one applies. */
static ssz phone_at(const unsigned char *s, ssz st, ssz endpos, ssz req) {
    unsigned char c = s[st], b = st > 0 ? s[st - 1] : 0;
    int word_before = st > 0 && (is_word(b) || b == '.' || b == '-');
    if (c == '+') {
        if (word_before || (st > 0 && b == '+')) return -1;
        return phone_plus(s, st, endpos, req);
    }
    if (c == '(') {
        if (word_before || (st > 0 && b == '(')) return -1;
        return phone_paren(s, st, endpos, req);
    }
    if (c >= '2' && c <= '9') {
        if (word_before) return -1;
        return phone_three(s, st, endpos, req);
    }
    if (c == '0') {
        if (word_before || (st > 0 && b == '+')) return -1;
        return phone_zero(s, st, endpos, req);
    }
    return -1;
}

/* detectors._phone_ok */
static int phone_ok(const unsigned char *s, ssz a, ssz b) {
    ssz n = 0;
    for (ssz i = a; i < b; i++) n += is_digit(s[i]);
    if (s[a] == '+') return n >= 8 && n <= 15;
    if (s[a] == '0') return n >= 10 && n <= 11;
    return n == 10;
}

/* ---- the search, per rule ---------------------------------------------------------------------- */
static ssz match_at(int kind, const unsigned char *s, ssz st, ssz endpos, ssz req) {
    switch (kind) {
    case K_EMAIL: return email_at(s, st, endpos);
    case K_CARD: return card_at(s, st, endpos, req);
    default: return phone_at(s, st, endpos, req);
    }
}

static inline int local_char(unsigned char c) { return is_word(c) || c == '.' || c == '+' || c == '-'; }

/* pattern.search(text, pos, endpos): the first start from pos with a match. Only characters a match
   can start with are tried; an e-mail is looked for from each `@` (see engine.fast_search, anchor):
   a match holding the first `@` from pos starts where the run of local-part characters before that
   `@` begins (the character before a match is never one of them), so that is the one start to try. */
static ssz search(int kind, const unsigned char *s, ssz pos, ssz endpos, ssz *start) {
    if (kind == K_EMAIL) {
        while (pos < endpos) {
            const unsigned char *found = (const unsigned char *)memchr(s + pos, '@', (size_t)(endpos - pos));
            if (found == NULL) return -1;
            ssz at = found - s;
            ssz limit = at - 64 > pos ? at - 64 : pos;
            ssz st = at;
            while (st > limit && local_char(s[st - 1])) st--;
            if (st < at) {
                ssz e = email_at(s, st, endpos);
                if (e == -2) return -2;
                if (e >= 0) {
                    *start = st;
                    return e;
                }
            }
            pos = at + 1;
        }
        return -1;
    }
    for (ssz st = pos; st < endpos; st++) {
        unsigned char c = s[st];
        if (!(is_digit(c) || (kind == K_PHONE && (c == '+' || c == '(')))) continue;
        ssz e = match_at(kind, s, st, endpos, -1);
        if (e >= 0) {
            *start = st;
            return e;
        }
    }
    return -1;
}

static int validate(int kind, const unsigned char *s, ssz a, ssz b) {
    if (kind == K_CARD) return card_ok(s, a, b);
    if (kind == K_PHONE) return phone_ok(s, a, b);
    return 1;
}

/* engine._shrink: the longest shorter match ending at a space that validates; -1 if none. */
static ssz shrink(int kind, const unsigned char *s, ssz start, ssz end) {
    for (ssz cut = end - 1; cut > start; cut--) {
        if (s[cut] != ' ') continue;
        ssz e = match_at(kind, s, start, cut, cut);
        if (e == cut && validate(kind, s, start, cut)) return cut;
    }
    return -1;
}

typedef struct {
    ssz start, end;
    int rule, spec;
} Span;

typedef struct {
    Span *items;
    ssz n, cap;
} Spans;

static int spans_push(Spans *v, ssz start, ssz end, int rule, int spec) {
    if (v->n == v->cap) {
        ssz cap = v->cap ? v->cap * 2 : 16;
        Span *grown = (Span *)realloc(v->items, sizeof(Span) * (size_t)cap);
        if (grown == NULL) return -1;
        v->items = grown;
        v->cap = cap;
    }
    v->items[v->n].start = start;
    v->items[v->n].end = end;
    v->items[v->n].rule = rule;
    v->items[v->n].spec = spec;
    v->n++;
    return 0;
}

typedef struct {
    int rule, kind;
    ssz *ends;
    ssz n_ends;
    const char *placeholder;
    ssz placeholder_len;
} Spec;

static int cmp_ssz(const void *a, const void *b) {
    ssz x = *(const ssz *)a, y = *(const ssz *)b;
    return (x > y) - (x < y);
}

/* Matches of one rule in its windows; 1 when a match reached a window's end (the caller then
   searches the whole text), 0 when done, -1 on memory failure. */
static int rule_matches(const Spec *spec, int spec_index, const unsigned char *s, ssz size, int whole, Spans *out) {
    ssz ranges_buf[32];
    ssz *ranges = ranges_buf;
    ssz n_ranges = 0;
    ssz *heap = NULL;
    if (whole || spec->n_ends == 0) {
        ranges[0] = 0;
        ranges[1] = size;
        n_ranges = 1;
    } else {
        if (spec->n_ends > 16) {
            heap = ranges = (ssz *)malloc(sizeof(ssz) * 2 * (size_t)spec->n_ends);
            if (heap == NULL) return -1;
        }
        qsort(spec->ends, (size_t)spec->n_ends, sizeof(ssz), cmp_ssz);
        for (ssz j = 0; j < spec->n_ends; j++) {
            ssz e = spec->ends[j];
            ssz lo = e - 192 > 0 ? e - 192 : 0, hi = e + 160 < size ? e + 160 : size;
            if (n_ranges && lo <= ranges[2 * n_ranges - 1]) {
                ranges[2 * n_ranges - 1] = hi;
            } else {
                ranges[2 * n_ranges] = lo;
                ranges[2 * n_ranges + 1] = hi;
                n_ranges++;
            }
        }
    }
    int kind = spec->kind;
    int status = 0;
    for (ssz r = 0; r < n_ranges && status == 0; r++) {
        ssz lo = ranges[2 * r], hi = ranges[2 * r + 1];
        ssz pos = lo;
        for (;;) {
            ssz start = 0;
            ssz end = search(kind, s, pos, hi, &start);
            if (end == -2) { status = -1; break; }
            if (end < 0) break;
            if (hi < size && end >= hi) { status = 1; break; }
            pos = end > start ? end : end + 1;
            if (!validate(kind, s, start, end)) {
                ssz cut = shrink(kind, s, start, end);
                if (cut < 0) {
                    for (ssz i = start; i < end; i++) {
                        if (s[i] == ' ') { pos = i + 1; break; }
                    }
                    continue;
                }
                end = cut;
                pos = end;
            }
            /* A match of these rules never looks like a placeholder (none starts with `<`). */
            if (end > start && spans_push(out, start, end, spec->rule, spec_index) < 0) { status = -1; break; }
        }
    }
    free(heap);
    return status;
}

static int cmp_priority(const void *a, const void *b) {
    const Span *x = (const Span *)a, *y = (const Span *)b;
    if (x->rule != y->rule) return (x->rule > y->rule) - (x->rule < y->rule);
    if (x->start != y->start) return (x->start > y->start) - (x->start < y->start);
    ssz lx = x->start - x->end, ly = y->start - y->end;
    return (lx > ly) - (lx < ly);
}

/* Redactor._matches: overlaps go to the earlier rule, then the earlier, longer match. */
static int resolve(Spans *spans) {
    if (spans->n <= 1) return 0;
    /* qsort is not stable; equal keys are equal spans of one rule, which the keep step drops alike. */
    qsort(spans->items, (size_t)spans->n, sizeof(Span), cmp_priority);
    Span *kept = (Span *)malloc(sizeof(Span) * (size_t)spans->n);
    if (kept == NULL) return -1;
    ssz n = 0;
    for (ssz i = 0; i < spans->n; i++) {
        Span sp = spans->items[i];
        ssz lo = 0, hi = n; /* bisect_right over the kept starts */
        while (lo < hi) {
            ssz mid = (lo + hi) / 2;
            if (sp.start < kept[mid].start) hi = mid;
            else lo = mid + 1;
        }
        ssz k = lo;
        if ((k && kept[k - 1].end > sp.start) || (k < n && kept[k].start < sp.end)) continue;
        memmove(kept + k + 1, kept + k, sizeof(Span) * (size_t)(n - k));
        kept[k] = sp;
        n++;
    }
    memcpy(spans->items, kept, sizeof(Span) * (size_t)n);
    spans->n = n;
    free(kept);
    return 0;
}

/* Reads `hits` and `table` into specs (see redact); the number of specs, -1 with an exception set,
   or -2 when the value is not for this module (a rule it does not replay, too many rules, offsets
   that are not in the text). `*ends_all` is to be freed by the caller. */
static ssz parse_specs(PyObject *hits, PyObject *table, ssz size, Spec *specs, ssz **ends_all_out) {
    ssz n_specs = PyDict_GET_SIZE(hits);
    if (n_specs < 1 || n_specs > MAX_SPECS) return -2;
    ssz n_ends_total = 0;
    Py_ssize_t it = 0;
    PyObject *key, *ends;
    for (ssz j = 0; PyDict_Next(hits, &it, &key, &ends); j++) {
        ssz rule = PyLong_AsSsize_t(key);
        if (rule == -1 && PyErr_Occurred()) return -1;
        if (rule < 0 || rule >= PyTuple_GET_SIZE(table) || !PyList_Check(ends)) return -2;
        PyObject *entry = PyTuple_GET_ITEM(table, rule);
        if (entry == Py_None) return -2; /* a rule only Python confirms */
        int kind;
        const char *placeholder;
        ssz placeholder_len;
        if (!PyArg_ParseTuple(entry, "is#", &kind, &placeholder, &placeholder_len)) return -1;
        if (kind < K_EMAIL || kind > K_PHONE) {
            PyErr_Format(PyExc_ValueError, "unknown detector kind %d for rule %zd", kind, rule);
            return -1;
        }
        for (ssz i = 0; i < placeholder_len; i++) {
            if ((unsigned char)placeholder[i] > 127) { /* the output is built as ASCII */
                PyErr_Format(PyExc_ValueError, "the placeholder of rule %zd is not ASCII", rule);
                return -1;
            }
        }
        specs[j].rule = (int)rule;
        specs[j].kind = kind;
        specs[j].placeholder = placeholder;
        specs[j].placeholder_len = placeholder_len;
        specs[j].n_ends = PyList_GET_SIZE(ends);
        n_ends_total += specs[j].n_ends;
    }
    ssz *ends_all = (ssz *)malloc(sizeof(ssz) * (size_t)(n_ends_total + 1));
    if (ends_all == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    ssz at = 0;
    it = 0;
    for (ssz j = 0; PyDict_Next(hits, &it, &key, &ends); j++) {
        specs[j].ends = ends_all + at;
        if (PyList_GET_SIZE(ends) != specs[j].n_ends) { /* changed under us: decline */
            free(ends_all);
            return -2;
        }
        for (ssz k = 0; k < specs[j].n_ends; k++) {
            ssz e = PyLong_AsSsize_t(PyList_GET_ITEM(ends, k));
            if (e == -1 && PyErr_Occurred()) {
                free(ends_all);
                return -1;
            }
            if (e < 0 || e > size) { /* not a trigger offset in this text: let Python decide */
                free(ends_all);
                return -2;
            }
            specs[j].ends[k] = e;
        }
        at += specs[j].n_ends;
    }
    *ends_all_out = ends_all;
    return n_specs;
}

/* The matches of every spec's rule in its windows, or over the whole text when a match reached a
   window's end (then *cut is set), not yet resolved for overlaps. 0, or -1 on memory failure. */
static int all_matches(Spec *specs, ssz n_specs, const unsigned char *s, ssz size, Spans *spans, int *cut) {
    *cut = 0;
    for (ssz j = 0; j < n_specs; j++) {
        int status = rule_matches(&specs[j], (int)j, s, size, 0, spans);
        if (status < 0) return -1;
        if (status == 1) { /* cut by a window: every rule over the whole text, as _matches does */
            *cut = 1;
            spans->n = 0;
            for (ssz r = 0; r < n_specs; r++)
                if (rule_matches(&specs[r], (int)r, s, size, 1, spans) < 0) return -1;
            return 0;
        }
    }
    return 0;
}

/* parse_specs + all_matches: 1 with *spans filled (to be freed by the caller), 0 when the value is
   not for this module, -1 with an exception set. */
static int collect(PyObject *hits, PyObject *table, const unsigned char *s, ssz size, Spec *specs, ssz *n_specs,
                   Spans *spans, int *cut) {
    ssz *ends_all = NULL;
    ssz n = parse_specs(hits, table, size, specs, &ends_all);
    if (n == -1) return -1;
    if (n == -2) return 0;
    int status = all_matches(specs, n, s, size, spans, cut);
    free(ends_all); /* specs[].ends are not read after this */
    if (status < 0) {
        free(spans->items);
        spans->items = NULL;
        PyErr_NoMemory();
        return -1;
    }
    *n_specs = n;
    return 1;
}

/* find(text, hits, table) -> ([(start, end, rule_id), ...], cut) | None: the matches of the rules
   in `hits` (all replayed here) as Redactor._rule_spans finds them, unresolved; `cut` when a match
   reached a window's end, the matches then being those over the whole text. None: not ASCII, or
   not for this module. */
static PyObject *find(PyObject *self, PyObject *args) {
    PyObject *text, *hits, *table;
    if (!PyArg_ParseTuple(args, "UO!O!", &text, &PyDict_Type, &hits, &PyTuple_Type, &table)) return NULL;
    if (!PyUnicode_IS_ASCII(text)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(text);
    ssz size = PyUnicode_GET_LENGTH(text);
    Spec specs[MAX_SPECS];
    ssz n_specs;
    Spans spans = {NULL, 0, 0};
    int cut;
    int got = collect(hits, table, s, size, specs, &n_specs, &spans, &cut);
    if (got <= 0) {
        if (got < 0) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *list = PyList_New(spans.n);
    if (list == NULL) {
        free(spans.items);
        return NULL;
    }
    for (ssz i = 0; i < spans.n; i++) {
        PyObject *item = Py_BuildValue("(nni)", spans.items[i].start, spans.items[i].end, spans.items[i].rule);
        if (item == NULL) {
            Py_DECREF(list);
            free(spans.items);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    free(spans.items);
    PyObject *result = Py_BuildValue("(OO)", list, cut ? Py_True : Py_False);
    Py_DECREF(list);
    return result;
}

static int looks_like_json(const unsigned char *s, ssz size) {
    for (ssz i = 0; i < size; i++) {
        unsigned char c = s[i];
        if (c == '{' || c == '[') return 1;
        if (!(c == ' ' || c == '\t' || c == '\r' || c == '\n')) return 0;
    }
    return 0;
}

static PyObject *redact(PyObject *self, PyObject *args) {
    PyObject *text, *hits, *table;
    int fold;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "UO!O!pn", &text, &PyDict_Type, &hits, &PyTuple_Type, &table, &fold, &cap))
        return NULL;
    if (!PyUnicode_IS_ASCII(text)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(text);
    ssz size = PyUnicode_GET_LENGTH(text);
    if (memchr(s, '\\', (size_t)size) != NULL) Py_RETURN_NONE;
    /* A percent-escape may hide a match that only the folded text shows: Python folds. */
    if (fold && memchr(s, '%', (size_t)size) != NULL) Py_RETURN_NONE;
    int json = looks_like_json(s, size);
    if (json && cap > 0 && size > cap / 4) Py_RETURN_NONE; /* parsed leaf by leaf instead */
    Spec specs[MAX_SPECS];
    ssz n_specs;
    Spans spans = {NULL, 0, 0};
    int cut;
    int got = collect(hits, table, s, size, specs, &n_specs, &spans, &cut);
    if (got <= 0) {
        if (got < 0) return NULL;
        Py_RETURN_NONE;
    }
    if (resolve(&spans) < 0) {
        free(spans.items);
        return PyErr_NoMemory();
    }

    if (json && spans.n) {
        /* _redact_json_text without escapes: each match inside one string (quotes taken in pairs). */
        ssz quotes = 0, prev = 0;
        for (ssz i = 0; i < spans.n; i++) {
            Span sp = spans.items[i];
            for (ssz p = prev; p < sp.start; p++) quotes += s[p] == '"';
            prev = sp.start;
            int closed = 0;
            for (ssz p = sp.start; p < sp.end; p++)
                if (s[p] == '"') closed = 1;
            if (quotes % 2 == 0 || closed || memchr(s + sp.end, '"', (size_t)(size - sp.end)) == NULL) {
                free(spans.items);
                Py_RETURN_NONE;
            }
        }
    }

    ssz length = size;
    for (ssz i = 0; i < spans.n; i++)
        length += specs[spans.items[i].spec].placeholder_len - (spans.items[i].end - spans.items[i].start);
    if (!json && cap > 0 && length > cap) { /* the cap cuts this plain value: Python does it */
        free(spans.items);
        Py_RETURN_NONE;
    }
    ssz tally[MAX_SPECS] = {0};
    PyObject *result;
    if (spans.n == 0) {
        Py_INCREF(text);
        result = text;
    } else {
        result = PyUnicode_New(length, 127);
        if (result == NULL) {
            free(spans.items);
            return NULL;
        }
        unsigned char *w = (unsigned char *)PyUnicode_DATA(result);
        ssz pos = 0;
        for (ssz i = 0; i < spans.n; i++) {
            Span sp = spans.items[i];
            const Spec *spec = &specs[sp.spec];
            memcpy(w, s + pos, (size_t)(sp.start - pos));
            w += sp.start - pos;
            memcpy(w, spec->placeholder, (size_t)spec->placeholder_len);
            w += spec->placeholder_len;
            pos = sp.end;
            tally[sp.spec]++;
        }
        memcpy(w, s + pos, (size_t)(size - pos));
    }
    free(spans.items);
    ssz n_counted = 0;
    for (ssz j = 0; j < n_specs; j++) n_counted += tally[j] > 0;
    PyObject *counts = PyTuple_New(n_counted);
    if (counts == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    for (ssz j = 0, k = 0; j < n_specs; j++) {
        if (!tally[j]) continue;
        PyObject *pair = Py_BuildValue("(in)", specs[j].rule, tally[j]);
        if (pair == NULL) {
            Py_DECREF(result);
            Py_DECREF(counts);
            return NULL;
        }
        PyTuple_SET_ITEM(counts, k++, pair);
    }
    PyObject *pair = PyTuple_Pack(2, result, counts);
    Py_DECREF(result);
    Py_DECREF(counts);
    return pair;
}

/* place(hits, starts, nested) -> dict | None: redact._hits_by_block (nested false: index ->
   [(rule_id, end - starts[index]), ...]) and redact._part_rules (nested true: index -> {rule_id:
   [end - starts[index], ...]}), where index = bisect_right(starts, end - 1) - 1 for each
   (rule_id, end) of `hits`, in their order. None for an end before the first start. */
static PyObject *place(PyObject *self, PyObject *args) {
    PyObject *hits, *starts_list;
    int nested;
    if (!PyArg_ParseTuple(args, "O!O!p", &PyList_Type, &hits, &PyList_Type, &starts_list, &nested)) return NULL;
    ssz m = PyList_GET_SIZE(starts_list);
    if (m == 0) Py_RETURN_NONE;
    ssz *starts = (ssz *)malloc(sizeof(ssz) * (size_t)m);
    if (starts == NULL) return PyErr_NoMemory();
    for (ssz i = 0; i < m; i++) {
        starts[i] = PyLong_AsSsize_t(PyList_GET_ITEM(starts_list, i));
        if (starts[i] == -1 && PyErr_Occurred()) {
            free(starts);
            return NULL;
        }
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        free(starts);
        return NULL;
    }
    ssz n = PyList_GET_SIZE(hits);
    for (ssz h = 0; h < n; h++) {
        PyObject *hit = PyList_GET_ITEM(hits, h);
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 2) {
            PyErr_SetString(PyExc_TypeError, "place: each hit must be a (rule_id, end) tuple");
            goto fail;
        }
        PyObject *rule = PyTuple_GET_ITEM(hit, 0);
        ssz end = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 1));
        if (end == -1 && PyErr_Occurred()) goto fail;
        ssz lo = 0, hi = m, x = end - 1; /* bisect_right(starts, end - 1) */
        while (lo < hi) {
            ssz mid = (lo + hi) / 2;
            if (x < starts[mid]) hi = mid;
            else lo = mid + 1;
        }
        ssz k = lo - 1;
        if (k < 0) { /* Python would index from the end: leave it to Python */
            Py_DECREF(out);
            free(starts);
            Py_RETURN_NONE;
        }
        PyObject *key = PyLong_FromSsize_t(k);
        if (key == NULL) goto fail;
        PyObject *slot = PyDict_GetItemWithError(out, key);
        if (slot == NULL) {
            if (PyErr_Occurred() || (slot = nested ? PyDict_New() : PyList_New(0)) == NULL) {
                Py_DECREF(key);
                goto fail;
            }
            int failed = PyDict_SetItem(out, key, slot);
            Py_DECREF(slot);
            if (failed) {
                Py_DECREF(key);
                goto fail;
            }
        }
        Py_DECREF(key);
        PyObject *offset = PyLong_FromSsize_t(end - starts[k]);
        if (offset == NULL) goto fail;
        int failed;
        if (nested) {
            PyObject *ends = PyDict_GetItemWithError(slot, rule);
            if (ends == NULL) {
                if (PyErr_Occurred() || (ends = PyList_New(0)) == NULL) {
                    Py_DECREF(offset);
                    goto fail;
                }
                failed = PyDict_SetItem(slot, rule, ends);
                Py_DECREF(ends);
                if (failed) {
                    Py_DECREF(offset);
                    goto fail;
                }
            }
            failed = PyList_Append(ends, offset);
        } else {
            PyObject *pair = PyTuple_Pack(2, rule, offset);
            failed = pair == NULL || PyList_Append(slot, pair) < 0;
            Py_XDECREF(pair);
        }
        Py_DECREF(offset);
        if (failed) goto fail;
    }
    free(starts);
    return out;

fail:
    Py_DECREF(out);
    free(starts);
    return NULL;
}

static PyMethodDef methods[] = {
    {"redact", redact, METH_VARARGS,
     "redact(text, hits, table, fold, cap) -> (new_text, ((rule_id, replaced), ...)) | None: confirm and "
     "replace the e-mail, card and phone matches of `text` as the Python redactor does; None when the "
     "value needs the Python path."},
    {"find", find, METH_VARARGS,
     "find(text, hits, table) -> ([(start, end, rule_id), ...], cut) | None: the unresolved matches of "
     "the e-mail, card and phone rules in `hits`, as the Python redactor finds them."},
    {"place", place, METH_VARARGS,
     "place(hits, starts, nested) -> dict | None: which block or value each (rule_id, end) hit ends in, "
     "with the end relative to it (see redact._hits_by_block and redact._part_rules)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastredact", NULL, -1, methods, NULL, NULL, NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__fastredact(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "EMAIL", K_EMAIL) < 0 || PyModule_AddIntConstant(m, "CREDIT_CARD", K_CARD) < 0 ||
        PyModule_AddIntConstant(m, "PHONE", K_PHONE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
