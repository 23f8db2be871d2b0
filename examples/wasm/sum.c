/* A meshwork reducer: sums the decimal numbers on stdin (the outputs of
 * every piece, in piece order) and prints the total.
 *
 *   clang --target=wasm32-wasi -O2 -o sum.wasm sum.c
 */
#include <stdio.h>

int main(void) {
    unsigned long long total = 0, n;
    while (scanf("%llu", &n) == 1) total += n;
    printf("%llu\n", total);
    return 0;
}
