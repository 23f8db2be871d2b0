/* A meshwork wasm task: word frequencies of the text on stdin, as
 * "count word" lines. A word is a maximal run of ASCII letters and digits,
 * lowercased (the built-in `wordcount` task's rule, on ASCII text).
 *
 *   clang --target=wasm32-wasi -O2 -o wordfreq.wasm wordfreq.c
 */
#include <ctype.h>
#include "counts.h"

int main(void) {
    struct table t = { 0 };
    char word[256];
    size_t n = 0;
    int c;
    while ((c = getchar()) != EOF) {
        if (isalnum(c)) {
            if (n == sizeof word) die("a word longer than 256 bytes");
            word[n++] = (char)tolower(c);
        } else if (n) {
            add(&t, word, n, 1);
            n = 0;
        }
    }
    if (n) add(&t, word, n, 1);
    print(&t);
    return 0;
}
