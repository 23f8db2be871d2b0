/* A meshwork wasm task: counts the primes in [lo, hi).
 *
 * Contract (WASI preview 1 command): the piece arrives on stdin as
 * "lo hi\n" (what `meshwork run wasm --range A..B --pieces N` sends), the
 * count goes to stdout as one decimal line. Same kernel as the built-in
 * `primes` task: trial division by the odd primes up to the square root,
 * found by a sieve.
 *
 *   clang --target=wasm32-wasi -O2 -o primes.wasm primes.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

static uint64_t isqrt(uint64_t n) {
    uint64_t r = 0;
    while ((r + 1) * (r + 1) <= n) r++;
    return r;
}

int main(void) {
    unsigned long long lo, hi;
    if (scanf("%llu %llu", &lo, &hi) != 2) {
        fprintf(stderr, "expected \"lo hi\" on stdin\n");
        return 2;
    }
    if (lo < 2) lo = 2;
    if (hi <= lo) {
        printf("0\n");
        return 0;
    }
    uint64_t r = isqrt(hi - 1);
    unsigned char *composite = calloc(r + 1, 1);
    uint64_t *odd = malloc(sizeof(uint64_t) * (r / 2 + 1));
    if (!composite || !odd) {
        fprintf(stderr, "out of memory for a sieve up to %llu\n", (unsigned long long)r);
        return 1;
    }
    size_t n_odd = 0;
    for (uint64_t i = 2; i * i <= r; i++)
        if (!composite[i])
            for (uint64_t m = i * i; m <= r; m += i) composite[m] = 1;
    for (uint64_t p = 3; p <= r; p++)
        if (!composite[p]) odd[n_odd++] = p;
    uint64_t count = (lo <= 2 && 2 < hi) ? 1 : 0;
    for (uint64_t n = lo | 1; n < hi; n += 2) {
        int prime = 1;
        for (size_t i = 0; i < n_odd; i++) {
            uint64_t p = odd[i];
            if (p * p > n) break;
            if (n % p == 0) { prime = 0; break; }
        }
        count += prime;
    }
    printf("%llu\n", (unsigned long long)count);
    return 0;
}
