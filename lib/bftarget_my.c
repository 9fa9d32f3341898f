/* bftarget_my: backfill into a MySQL/MariaDB target (see bftarget.h); not written yet. */
#include "bftarget.h"

#include <stdlib.h>

static bool my_connect(struct bftarget *t, struct err *err)
{
	(void)t;
	err_set(err, "target: backfill into MySQL/MariaDB is not supported yet");
	return false;
}

static bool my_is_broken(struct bftarget *t)
{
	(void)t;
	return true;
}

static void my_free(struct bftarget *t)
{
	free(t);
}

static const struct bftarget_ops my_ops = {
    .connect = my_connect,
    .is_broken = my_is_broken,
    .free = my_free,
};

struct bftarget *bftarget_my_new(const char *conninfo, struct myconn *conn)
{
	(void)conninfo;
	(void)conn;
	struct bftarget *t = xcalloc(1, sizeof(*t));
	t->ops = &my_ops;
	t->engine = ENGINE_MARIADB;
	return t;
}
