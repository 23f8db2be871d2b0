/* A meshwork reducer for wordfreq: adds up the "count word" lines of every
 * piece and prints the totals the same way.
 *
 *   clang --target=wasm32-wasi -O2 -o merge_counts.wasm merge_counts.c
 */
#include "counts.h"

int main(void) {
    struct table t = { 0 };
    unsigned long long count;
    char word[257];
    while (scanf("%llu %256s", &count, word) == 2) add(&t, word, strlen(word), count);
    print(&t);
    return 0;
}
