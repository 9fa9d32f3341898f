/* store: the target's migd state, dispatched by engine (see store.h). */
#include "store.h"

#include <string.h>

#include "mystore.h"
#include "pgstore.h"

bool store_ensure(struct store *s, const char *label, struct err *err)
{
	if (store_is_my(s)) {
		if (s->my.db != NULL && !myconn_is_broken(&s->my))
			return true;
		myconn_close(&s->my);
		return myconn_open_dsn(&s->my, label, s->conninfo, err);
	}
	if (s->pg.conn != NULL && !pgconn_is_broken(&s->pg))
		return true;
	pgconn_close(&s->pg);
	return pgconn_open(&s->pg, label, s->conninfo, err);
}

void store_close(struct store *s)
{
	pgconn_close(&s->pg);
	myconn_close(&s->my);
}

bool store_init(struct store *s, struct err *err)
{
	return store_is_my(s) ? mystore_init(&s->my, err) : pgstore_init(&s->pg, err);
}

bool store_load(struct store *s, const char *name, struct store_migration *out, struct err *err)
{
	return store_is_my(s) ? mystore_load(&s->my, name, out, err)
			      : pgstore_load(&s->pg, name, out, err);
}

bool store_create(struct store *s, const char *name, const char *source_engine, const char *slot,
		  const char *publication, struct err *err)
{
	return store_is_my(s) ? mystore_create(&s->my, name, source_engine, slot, publication, err)
			      : pgstore_create(&s->pg, name, source_engine, slot, publication, err);
}

bool store_set_captured(struct store *s, const char *name, const struct pos *consistent,
			const char *reason, struct err *err)
{
	return store_is_my(s) ? mystore_set_captured(&s->my, name, consistent, reason, err)
			      : pgstore_set_captured(&s->pg, name, consistent, reason, err);
}

bool store_set_phase(struct store *s, const char *name, enum phase from, enum phase to,
		     const char *actor, const char *reason, const struct pos *source_pos,
		     const struct pos *target_pos, struct err *err)
{
	return store_is_my(s) ? mystore_set_phase(&s->my, name, from, to, actor, reason, source_pos,
						  target_pos, err)
			      : pgstore_set_phase(&s->pg, name, from, to, actor, reason, source_pos,
						  target_pos, err);
}

bool store_set_pending(struct store *s, const char *name, const char *op,
		       const struct pos *freeze_pos, struct err *err)
{
	return store_is_my(s) ? mystore_set_pending(&s->my, name, op, freeze_pos, err)
			      : pgstore_set_pending(&s->pg, name, op, freeze_pos, err);
}

bool store_set_reverse(struct store *s, const char *name, const struct pos *rev, struct err *err)
{
	return store_is_my(s) ? mystore_set_reverse(&s->my, name, rev, err)
			      : pgstore_set_reverse(&s->pg, name, rev, err);
}

bool store_applied(struct store *s, const char *name, struct pos *applied, int64_t *commit_us,
		   struct err *err)
{
	return store_is_my(s) ? mystore_applied(&s->my, name, applied, commit_us, err)
			      : pgstore_applied(&s->pg, name, applied, commit_us, err);
}

bool store_add_rehearsal(struct store *s, const char *name, const char *phase, bool passed,
			 const char *report, struct err *err)
{
	return store_is_my(s) ? mystore_add_rehearsal(&s->my, name, phase, passed, report, err)
			      : pgstore_add_rehearsal(&s->pg, name, phase, passed, report, err);
}

bool store_last_rehearsal(struct store *s, const char *name, char **report, struct err *err)
{
	return store_is_my(s) ? mystore_last_rehearsal(&s->my, name, report, err)
			      : pgstore_last_rehearsal(&s->pg, name, report, err);
}

bool store_journal(struct store *s, const char *name, json_t **out, struct err *err)
{
	return store_is_my(s) ? mystore_journal(&s->my, name, out, err)
			      : pgstore_journal(&s->pg, name, out, err);
}

json_t *store_journal_entry(const char *const v[9])
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "at", v[0], "from", v[1],
			      "to", v[2], "actor", v[3], "reason", v[4], "source_pos", v[5],
			      "owner_before", v[6], "owner_after", v[7]);
	if (strcmp(v[8], "none") != 0)
		json_object_set_new(o, "target_pos", json_string(v[8]));
	return o;
}
