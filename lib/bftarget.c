/* bftarget: the target side of backfill, dispatched by engine (see bftarget.h). */
#include "bftarget.h"

#include <stdlib.h>

struct bftarget *bftarget_new(enum migd_engine e, const char *conninfo)
{
	if (e == ENGINE_POSTGRESQL)
		return bftarget_pg_new(conninfo, NULL);
	return bftarget_my_new(conninfo, NULL);
}

struct bftarget *bftarget_of_store(struct store *s)
{
	if (store_is_my(s))
		return bftarget_my_new(s->conninfo, &s->my);
	return bftarget_pg_new(s->conninfo, &s->pg);
}

void bftarget_todo_free(struct bftarget_todo *v, int n)
{
	for (int i = 0; v != NULL && i < n; i++) {
		free(v[i].table_name);
		free(v[i].lo);
		free(v[i].hi);
	}
	free(v);
}

void bftarget_copied_free(struct bftarget_copied *v, int n)
{
	for (int i = 0; v != NULL && i < n; i++) {
		free(v[i].table_name);
		free(v[i].pos);
	}
	free(v);
}

char *bftarget_table_name(const struct mig_table *t)
{
	return xasprintf("%s.%s", t->schema, t->name);
}
