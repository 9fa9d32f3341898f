/*
 * spool framing, segment headers and the reader (see spool.h, spool_int.h).
 *
 * Every spool and spill file is a sequence of frames
 *     u32le length  u32le crc32c(payload)  payload[length]
 * crc32c is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial
 * and final xor 0xFFFFFFFF; crc32c("123456789") = 0xE3069283), table-driven.
 */
#include "spool_int.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
    0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
    0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
    0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
    0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
    0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
    0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
    0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
    0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
    0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
    0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
    0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
    0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
    0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
    0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
    0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
    0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
    0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
    0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
    0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
    0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
    0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	crc = ~crc;
	while (len-- > 0)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void buf_append(struct change_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void spool_frame_put(struct change_buf *b, const uint8_t *payload, size_t len)
{
	uint8_t hdr[SPOOL_FRAME_HDR];
	put_le32(hdr, (uint32_t)len);
	put_le32(hdr + 4, spool_crc32c(0, payload, len));
	buf_append(b, hdr, sizeof(hdr));
	buf_append(b, payload, len);
}

char *spool_errno_msg(const char *what, const char *path)
{
	return xasprintf("%s %s: %s", what, path, strerror(errno));
}

bool spool_write_all(int fd, const void *data, size_t len, const char *path, char **err)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			*err = spool_errno_msg("cannot write", path);
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* --- segment header ------------------------------------------------------ */

#define HDR_FIXED (8 + 8 + 8 + 1 + 4)

void spool_hdr_encode(const struct spool_hdr *h, struct change_buf *out)
{
	uint8_t fixed[HDR_FIXED];
	memcpy(fixed, SPOOL_HDR_MAGIC, 7);
	fixed[7] = SPOOL_HDR_VERSION;
	put_le64(fixed + 8, h->seq);
	put_le64(fixed + 16, h->ncommits);
	fixed[24] = h->in_txn ? 1 : 0;
	put_le32(fixed + 25, h->nrels);
	buf_append(out, fixed, sizeof(fixed));
	struct change_event ev = {.kind = CHG_COMMIT};
	ev.commit.commit_pos = pos_none();
	ev.commit.end_pos = h->last_commit_end;
	change_encode(&ev, out);
}

bool spool_hdr_decode(const uint8_t *p, size_t len, struct spool_hdr *h, const char **why)
{
	struct change_event ev;
	struct change_scratch scratch = {0};

	if (len < HDR_FIXED || memcmp(p, SPOOL_HDR_MAGIC, 7) != 0) {
		*why = "not a spool segment header";
		return false;
	}
	if (p[7] != SPOOL_HDR_VERSION) {
		*why = "unsupported spool segment version";
		return false;
	}
	h->seq = get_le64(p + 8);
	h->ncommits = get_le64(p + 16);
	h->in_txn = p[24] != 0;
	h->nrels = get_le32(p + 25);
	/* a COMMIT event needs no scratch space: nothing to free */
	if (!change_decode(p + HDR_FIXED, len - HDR_FIXED, &ev, &scratch, why))
		return false;
	if (ev.kind != CHG_COMMIT) {
		*why = "malformed spool segment header";
		return false;
	}
	h->last_commit_end = ev.commit.end_pos;
	return true;
}

/* --- frame reader -------------------------------------------------------- */

void spool_frames_init(struct spool_frames *fr, int fd, const char *path, uint64_t limit)
{
	*fr = (struct spool_frames){.fd = fd, .path = path, .limit = limit};
}

void spool_frames_free(struct spool_frames *fr)
{
	free(fr->buf);
	fr->buf = NULL;
	fr->cap = fr->blen = 0;
}

/* Makes file bytes [off, off + n) available in the buffer; n <= limit - off. */
static enum spool_fr fill(struct spool_frames *fr, size_t n, char **err)
{
	if (fr->off >= fr->boff && fr->off + n <= fr->boff + fr->blen)
		return SPOOL_FR_OK;
	size_t keep = 0;
	if (fr->off >= fr->boff && fr->off < fr->boff + fr->blen) {
		keep = (size_t)(fr->boff + fr->blen - fr->off);
		memmove(fr->buf, fr->buf + (fr->off - fr->boff), keep);
	}
	fr->boff = fr->off;
	fr->blen = keep;
	if (fr->cap < n || fr->buf == NULL) {
		size_t cap = fr->cap ? fr->cap : SPOOL_RBUF_INIT;
		while (cap < n)
			cap *= 2;
		fr->buf = xrealloc(fr->buf, cap);
		fr->cap = cap;
	}
	while (fr->blen < n) {
		uint64_t at = fr->boff + fr->blen;
		size_t want = fr->cap - fr->blen;
		if (want > fr->limit - at)
			want = (size_t)(fr->limit - at);
		ssize_t got = pread(fr->fd, fr->buf + fr->blen, want, (off_t)at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*err = spool_errno_msg("cannot read", fr->path);
			return SPOOL_FR_IOERR;
		}
		if (got == 0) {
			*err = xasprintf("cannot read %s: file ends at %" PRIu64
					 ", expected %" PRIu64 " bytes",
					 fr->path, at, fr->limit);
			return SPOOL_FR_IOERR;
		}
		fr->blen += (size_t)got;
	}
	return SPOOL_FR_OK;
}

enum spool_fr spool_frames_next(struct spool_frames *fr, const uint8_t **payload, uint32_t *len,
				const char **why, char **err)
{
	enum spool_fr r;

	if (fr->off >= fr->limit)
		return SPOOL_FR_END;
	if (fr->limit - fr->off < SPOOL_FRAME_HDR) {
		*why = "truncated frame header";
		return SPOOL_FR_BAD;
	}
	if ((r = fill(fr, SPOOL_FRAME_HDR, err)) != SPOOL_FR_OK)
		return r;
	const uint8_t *h = fr->buf + (fr->off - fr->boff);
	uint32_t n = get_le32(h), crc = get_le32(h + 4);
	if (n == 0 || n > fr->limit - fr->off - SPOOL_FRAME_HDR) {
		*why = "bad frame length";
		return SPOOL_FR_BAD;
	}
	if ((r = fill(fr, SPOOL_FRAME_HDR + (size_t)n, err)) != SPOOL_FR_OK)
		return r;
	const uint8_t *p = fr->buf + (fr->off - fr->boff) + SPOOL_FRAME_HDR;
	if (spool_crc32c(0, p, n) != crc) {
		*why = "crc mismatch";
		return SPOOL_FR_BAD;
	}
	*payload = p;
	*len = n;
	fr->off += SPOOL_FRAME_HDR + (uint64_t)n;
	return SPOOL_FR_OK;
}

/* --- reader -------------------------------------------------------------- */

struct spool_reader {
	struct spool *sp; /* borrowed */
	bool positioned;  /* seq names a segment */
	uint64_t seq;
	int fd;	    /* -1 until seq is opened */
	char *path; /* owned */
	bool header_read;
	bool started;	  /* has read a segment header */
	bool skip_orphan; /* first segment began inside a released transaction: skip to a BEGIN */
	struct spool_frames fr;
	struct change_scratch scratch; /* owned: events borrow from it and fr */
};

bool spool_reader_open(struct spool *sp, struct spool_reader **out, char **err)
{
	pthread_mutex_lock(&sp->mu);
	if (sp->reader_open) {
		pthread_mutex_unlock(&sp->mu);
		*err = xasprintf("spool %s: a reader is already open", sp->dir);
		return false;
	}
	struct spool_reader *rd = xcalloc(1, sizeof(*rd));
	rd->sp = sp;
	rd->fd = -1;
	sp->reader_open = true;
	sp->reader_seq = 0;
	if (sp->nsegs > 0) {
		rd->positioned = true;
		rd->seq = sp->reader_seq = sp->segs[0].seq;
	}
	pthread_mutex_unlock(&sp->mu);
	*out = rd;
	return true;
}

static void close_segment(struct spool_reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	rd->fd = -1;
	free(rd->path);
	rd->path = NULL;
	spool_frames_free(&rd->fr);
}

void spool_reader_close(struct spool_reader *rd)
{
	if (rd == NULL)
		return;
	struct spool *sp = rd->sp;
	pthread_mutex_lock(&sp->mu);
	sp->reader_open = false;
	sp->reader_seq = UINT64_MAX;
	pthread_mutex_unlock(&sp->mu);
	close_segment(rd);
	change_scratch_free(&rd->scratch);
	free(rd);
}

static struct spool_seg *find_seg(struct spool *sp, uint64_t seq)
{
	size_t lo = 0, hi = sp->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sp->segs[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sp->nsegs && sp->segs[lo].seq == seq ? &sp->segs[lo] : NULL;
}

/*
 * Under mu: how far segment seq may be read, and the segment after it
 * (0 if seq is still being written).
 */
static uint64_t readable_end(struct spool *sp, uint64_t seq, uint64_t *next)
{
	*next = 0;
	if (sp->durable_seq == 0 || seq > sp->durable_seq)
		return 0;
	if (seq == sp->durable_seq)
		return sp->durable_off;
	const struct spool_seg *s = find_seg(sp, seq);
	if (s == NULL) /* BUG: the segment under the reader was deleted */
		return 0;
	if (s + 1 < sp->segs + sp->nsegs)
		*next = s[1].seq;
	return s->size;
}

/* Waits until the durable end moves past (seq, off) or the deadline (-1: none) passes. */
static bool wait_durable(struct spool *sp, uint64_t seq, uint64_t off, int64_t deadline_us)
{
	bool moved = true;
	pthread_mutex_lock(&sp->mu);
	while (sp->durable_seq == seq && sp->durable_off == off) {
		if (deadline_us < 0) {
			pthread_cond_wait(&sp->durable_cond, &sp->mu);
			continue;
		}
		if (now_mono_usec() >= deadline_us) {
			moved = false;
			break;
		}
		struct timespec ts = {.tv_sec = deadline_us / 1000000,
				      .tv_nsec = (long)(deadline_us % 1000000) * 1000};
		pthread_cond_timedwait(&sp->durable_cond, &sp->mu, &ts);
	}
	pthread_mutex_unlock(&sp->mu);
	return moved;
}

static bool open_segment(struct spool_reader *rd, char **err)
{
	rd->path = spool_seg_path(rd->sp, rd->seq);
	rd->fd = open(rd->path, O_RDONLY | O_CLOEXEC);
	if (rd->fd < 0) {
		*err = spool_errno_msg("cannot open", rd->path);
		free(rd->path);
		rd->path = NULL;
		return false;
	}
	spool_frames_init(&rd->fr, rd->fd, rd->path, 0);
	rd->header_read = false;
	return true;
}

int spool_reader_next(struct spool_reader *rd, struct change_event *ev, int timeout_ms, char **err)
{
	struct spool *sp = rd->sp;
	int64_t deadline = timeout_ms < 0 ? -1 : now_mono_usec() + (int64_t)timeout_ms * 1000;

	for (;;) {
		uint64_t dseq, doff, limit = 0, next = 0;

		pthread_mutex_lock(&sp->mu);
		if (!rd->positioned && sp->nsegs > 0 && sp->durable_seq != 0) {
			rd->positioned = true;
			rd->seq = sp->reader_seq = sp->segs[0].seq;
		}
		if (rd->positioned)
			limit = readable_end(sp, rd->seq, &next);
		dseq = sp->durable_seq;
		doff = sp->durable_off;
		pthread_mutex_unlock(&sp->mu);

		if (rd->positioned && rd->fd < 0 && limit > 0 && !open_segment(rd, err))
			return -1;
		if (rd->fd >= 0) {
			const uint8_t *p;
			uint32_t len;
			const char *why = NULL;
			rd->fr.limit = limit;
			uint64_t at = rd->fr.off;
			enum spool_fr r = spool_frames_next(&rd->fr, &p, &len, &why, err);
			if (r == SPOOL_FR_IOERR)
				return -1;
			if (r == SPOOL_FR_BAD) {
				*err = xasprintf("%s: corrupt record at offset %" PRIu64 ": %s",
						 rd->path, at, why);
				return -1;
			}
			if (r == SPOOL_FR_OK && !rd->header_read) {
				struct spool_hdr h;
				if (!spool_hdr_decode(p, len, &h, &why) || h.seq != rd->seq) {
					*err = xasprintf("%s: bad segment header: %s", rd->path,
							 why ? why : "sequence mismatch");
					return -1;
				}
				rd->header_read = true;
				if (!rd->started) {
					rd->started = true;
					rd->skip_orphan = h.in_txn;
				}
				continue;
			}
			if (r == SPOOL_FR_OK) {
				if (!change_decode(p, len, ev, &rd->scratch, &why)) {
					*err = xasprintf("%s: undecodable record at offset %" PRIu64
							 ": %s",
							 rd->path, at, why);
					return -1;
				}
				if (rd->skip_orphan) {
					/*
					 * The tail of a transaction whose start was released:
					 * release only drops a segment once the transactions in it
					 * are applied, so this one is.  Relations still count.
					 */
					if (ev->kind == CHG_BEGIN)
						rd->skip_orphan = false;
					else if (ev->kind != CHG_RELATION)
						continue;
				}
				atomic_fetch_add_explicit(&sp->records_read, 1,
							  memory_order_relaxed);
				return 1;
			}
			if (next != 0) { /* this segment is complete: on to the next */
				close_segment(rd);
				pthread_mutex_lock(&sp->mu);
				rd->seq = sp->reader_seq = next;
				pthread_mutex_unlock(&sp->mu);
				continue;
			}
		}
		if (!wait_durable(sp, dseq, doff, deadline))
			return 0;
	}
}
