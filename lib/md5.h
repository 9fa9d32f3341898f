/*
 * md5: MD5 (RFC 1321), for hashing canonical rows client-side so that they
 * agree with PostgreSQL's md5() computed server-side (validation).  Not for
 * anything security related.  Pure computation, no allocation.
 */
#ifndef MIGD_MD5_H
#define MIGD_MD5_H

#include <stddef.h>
#include <stdint.h>

struct md5_ctx {
	uint32_t h[4];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
};

void md5_init(struct md5_ctx *c);
void md5_update(struct md5_ctx *c, const void *data, size_t n);
/* Writes the 16-byte digest; c must be initialised again before reuse. */
void md5_final(struct md5_ctx *c, uint8_t out[16]);

/* The digest of one buffer. */
void md5_buf(const void *data, size_t n, uint8_t out[16]);
/* The digest as 32 lower-case hex digits plus NUL, as PostgreSQL's md5() prints it. */
void md5_hex(const uint8_t d[16], char out[33]);

#endif
