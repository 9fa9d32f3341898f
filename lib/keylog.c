/* keylog: touched keys per committed batch (see keylog.h). */
#include "keylog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define SYNC_EVERY_USEC 1000000

bool keylog_open(struct keylog *kl, const char *path, const struct pos *applied, char **err)
{
	char p[POS_TEXT_MAX];
	kl->fp = fopen(path, "a");
	if (kl->fp == NULL) {
		*err = xasprintf("cannot open %s: %s", path, strerror(errno));
		return false;
	}
	fprintf(kl->fp, "S\t%s\n", pos_format(applied, p, sizeof(p)));
	fflush(kl->fp);
	kl->last_sync_usec = 0;
	return true;
}

void keylog_close(struct keylog *kl)
{
	if (kl->fp != NULL) {
		fflush(kl->fp);
		fdatasync(fileno(kl->fp));
		fclose(kl->fp);
	}
	kl->fp = NULL;
}

/* s with COPY text's escapes for backslash, tab, newline and CR. */
static void put_escaped(FILE *fp, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\r':
			fputs("\\r", fp);
			break;
		default:
			fputc(*s, fp);
		}
	}
}

/* Undoes put_escaped() in place (any other escaped character stands for itself). */
static void unescape(char *s)
{
	char *w = s;
	for (; *s; s++) {
		if (*s != '\\' || s[1] == '\0') {
			*w++ = *s;
			continue;
		}
		s++;
		*w++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s;
	}
	*w = '\0';
}

void keylog_key(struct keylog *kl, const char *table, const char *key_arr)
{
	if (kl->fp == NULL)
		return;
	fputs("k\t", kl->fp);
	put_escaped(kl->fp, table);
	fputc('\t', kl->fp);
	put_escaped(kl->fp, key_arr);
	fputc('\n', kl->fp);
}

void keylog_commit(struct keylog *kl, const struct pos *end)
{
	char p[POS_TEXT_MAX];
	if (kl->fp == NULL)
		return;
	fprintf(kl->fp, "C\t%s\n", pos_format(end, p, sizeof(p)));
	fflush(kl->fp);
	if (now_mono_usec() - kl->last_sync_usec >= SYNC_EVERY_USEC) {
		fdatasync(fileno(kl->fp));
		kl->last_sync_usec = now_mono_usec();
	}
}

void keylog_rollback(struct keylog *kl)
{
	if (kl->fp != NULL)
		fputs("R\n", kl->fp);
}

char *keylog_array_literal(const char *const *vals, const uint32_t *lens, int n)
{
	size_t cap = 3;
	for (int i = 0; i < n; i++)
		cap += 2 * lens[i] + 3;
	char *out = xmalloc(cap), *p = out;
	*p++ = '{';
	for (int i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (uint32_t j = 0; j < lens[i]; j++) {
			char c = vals[i][j];
			if (c == '"' || c == '\\')
				*p++ = '\\';
			*p++ = c; /* tabs and newlines too: keylog_key() escapes the line */
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

struct pending {
	char **lines; /* owned: "table\0key", unescaped */
	size_t n, cap;
};

static void pending_clear(struct pending *pd)
{
	for (size_t i = 0; i < pd->n; i++)
		free(pd->lines[i]);
	pd->n = 0;
}

bool keylog_read_since(const char *path, uint64_t since_lsn,
		       void (*fn)(const char *table, const char *key, void *arg), void *arg,
		       uint64_t *gap_from, uint64_t *gap_to, char **err)
{
	FILE *fp = fopen(path, "r");
	*gap_from = *gap_to = 0;
	if (fp == NULL) {
		if (errno == ENOENT)
			return true; /* nothing applied yet */
		*err = xasprintf("cannot read %s: %s", path, strerror(errno));
		return false;
	}
	struct pending pd = {0};
	char *line = NULL;
	size_t cap = 0;
	uint64_t last_commit = 0;
	while (getline(&line, &cap, fp) > 0) {
		line[strcspn(line, "\n")] = '\0';
		const char *perr;
		struct pos p;
		if ((line[0] == 'k' || line[0] == 'K') && line[1] == '\t') {
			char *tab = strchr(line + 2, '\t');
			if (tab == NULL)
				continue;
			*tab = '\0';
			if (line[0] == 'k') { /* escaped fields; K: an older file's, as they are */
				unescape(line + 2);
				unescape(tab + 1);
			}
			if (pd.n == pd.cap) {
				pd.cap = pd.cap ? pd.cap * 2 : 256;
				pd.lines = xrealloc(pd.lines, pd.cap * sizeof(char *));
			}
			size_t tl = strlen(line + 2) + 1, kl = strlen(tab + 1) + 1;
			char *rec = xmalloc(tl + kl);
			memcpy(rec, line + 2, tl);
			memcpy(rec + tl, tab + 1, kl);
			pd.lines[pd.n++] = rec;
		} else if (line[0] == 'R') {
			pending_clear(&pd);
		} else if ((line[0] == 'C' || line[0] == 'S') && line[1] == '\t' &&
			   pos_parse(line + 2, &p, &perr)) {
			uint64_t lsn = pos_scalar(&p); /* the LSN, or a binlog coordinate */
			if (line[0] == 'S') {
				/* Committed batches whose lines never reached the disk. */
				if (lsn > last_commit && lsn > since_lsn && last_commit > 0) {
					if (*gap_from == 0)
						*gap_from = last_commit;
					*gap_to = lsn;
				}
				pending_clear(&pd); /* an unfinished batch before a crash */
				if (lsn > last_commit)
					last_commit = lsn;
				continue;
			}
			if (lsn > since_lsn)
				for (size_t i = 0; i < pd.n; i++)
					fn(pd.lines[i], pd.lines[i] + strlen(pd.lines[i]) + 1, arg);
			pending_clear(&pd);
			last_commit = lsn;
		}
	}
	free(line);
	pending_clear(&pd);
	free(pd.lines);
	fclose(fp);
	return true;
}
