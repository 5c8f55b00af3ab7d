/* random: bytes from the kernel's CSPRNG, drawn from a per-process pool so
 * that an event id or a nonce costs no system call: one getrandom(2) fills
 * the pool for the next few hundred. A child of fork() starts with an empty
 * pool, so two workers never share bytes. */
#ifndef BB_RANDOM_H
#define BB_RANDOM_H

#include <stddef.h>

/* Fills out with n random bytes (n at most 256). Aborts if the kernel
 * cannot supply randomness, rather than issue a guessable id. */
void bb_random(void *out, size_t n);

#endif
