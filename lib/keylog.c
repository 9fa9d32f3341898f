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

void keylog_key(struct keylog *kl, const char *table, const char *key_arr)
{
	if (kl->fp != NULL)
		fprintf(kl->fp, "K\t%s\t%s\n", table, key_arr);
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
			/* tabs and newlines would break the line format: escape them */
			*p++ = (c == '\t' || c == '\n') ? ' ' : c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

struct pending {
	char **lines; /* owned: "table\tkey" */
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
		if (line[0] == 'K' && line[1] == '\t') {
			if (pd.n == pd.cap) {
				pd.cap = pd.cap ? pd.cap * 2 : 256;
				pd.lines = xrealloc(pd.lines, pd.cap * sizeof(char *));
			}
			pd.lines[pd.n++] = xstrdup(line + 2);
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
				for (size_t i = 0; i < pd.n; i++) {
					char *tab = strchr(pd.lines[i], '\t');
					if (tab == NULL)
						continue;
					*tab = '\0';
					fn(pd.lines[i], tab + 1, arg);
				}
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
