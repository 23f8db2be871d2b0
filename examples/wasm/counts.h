/* A word -> count table for the word-frequency guests (open addressing,
 * grows as needed), and its output: "count word" lines, most frequent
 * first, ties in byte order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry { char *word; unsigned long long count; };
struct table { struct entry *slots; size_t cap, len; };

static unsigned long long hash(const char *s, size_t n) {
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void die(const char *why) {
    fprintf(stderr, "%s\n", why);
    exit(1);
}

static void add(struct table *t, const char *w, size_t n, unsigned long long by);

static void grow(struct table *t) {
    struct table bigger = { calloc(t->cap ? t->cap * 2 : 1024, sizeof(struct entry)), t->cap ? t->cap * 2 : 1024, 0 };
    if (!bigger.slots) die("out of memory");
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].word) {
            add(&bigger, t->slots[i].word, strlen(t->slots[i].word), t->slots[i].count);
            free(t->slots[i].word);
        }
    free(t->slots);
    *t = bigger;
}

static void add(struct table *t, const char *w, size_t n, unsigned long long by) {
    if (2 * (t->len + 1) > t->cap) grow(t);
    size_t i = hash(w, n) & (t->cap - 1);
    while (t->slots[i].word) {
        if (strlen(t->slots[i].word) == n && memcmp(t->slots[i].word, w, n) == 0) {
            t->slots[i].count += by;
            return;
        }
        i = (i + 1) & (t->cap - 1);
    }
    char *copy = malloc(n + 1);
    if (!copy) die("out of memory");
    memcpy(copy, w, n);
    copy[n] = 0;
    t->slots[i] = (struct entry){ copy, by };
    t->len++;
}

static int by_count(const void *a, const void *b) {
    const struct entry *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

static void print(struct table *t) {
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].word) t->slots[k++] = t->slots[i];
    qsort(t->slots, k, sizeof(struct entry), by_count);
    for (size_t i = 0; i < k; i++) printf("%llu %s\n", t->slots[i].count, t->slots[i].word);
}
