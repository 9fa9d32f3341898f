/* Unit tests for phase: names, parsing, owners and the transition graph. */
#include <check.h>
#include <string.h>

#include "phase.h"

START_TEST(test_names_round_trip)
{
	for (int i = 0; i < PHASE__MAX; i++) {
		enum phase p;
		ck_assert_ptr_nonnull(phase_names[i]);
		ck_assert(phase_parse(phase_name((enum phase)i), &p));
		ck_assert_int_eq(p, i);
	}
	enum phase p;
	ck_assert(!phase_parse("frozen ", &p));
	ck_assert(!phase_parse("", &p));
	ck_assert_str_eq(phase_name(PHASE__MAX), "unknown");
}
END_TEST

START_TEST(test_happy_path_is_legal)
{
	static const enum phase path[] = {PHASE_INIT,   PHASE_CAPTURED, PHASE_BACKFILLING,
					  PHASE_CATCHING_UP, PHASE_SYNCED, PHASE_FROZEN,
					  PHASE_CUTOVER, PHASE_WATCHING, PHASE_DONE};
	for (size_t i = 0; i + 1 < sizeof(path) / sizeof(path[0]); i++)
		ck_assert_msg(phase_transition_legal(path[i], path[i + 1]), "%s -> %s",
			      phase_name(path[i]), phase_name(path[i + 1]));
}
END_TEST

START_TEST(test_ways_back)
{
	/* Abort only before the flip; after it, the way back is a rollback. */
	for (int p = PHASE_INIT; p <= PHASE_FROZEN; p++)
		ck_assert(phase_transition_legal((enum phase)p, PHASE_ABORTED));
	ck_assert(!phase_transition_legal(PHASE_WATCHING, PHASE_ABORTED));
	ck_assert(!phase_transition_legal(PHASE_CUTOVER, PHASE_ABORTED));
	ck_assert(phase_transition_legal(PHASE_WATCHING, PHASE_ROLLING_BACK));
	ck_assert(phase_transition_legal(PHASE_ROLLING_BACK, PHASE_ROLLED_BACK));
	ck_assert(phase_transition_legal(PHASE_FROZEN, PHASE_SYNCED)); /* unfreeze */
	ck_assert(phase_transition_legal(PHASE_CUTOVER, PHASE_FROZEN)); /* failed hook */
}
END_TEST

START_TEST(test_illegal_and_terminal)
{
	ck_assert(!phase_transition_legal(PHASE_INIT, PHASE_FROZEN));
	ck_assert(!phase_transition_legal(PHASE_SYNCED, PHASE_CUTOVER)); /* must freeze first */
	ck_assert(!phase_transition_legal(PHASE_INIT, PHASE_INIT));
	ck_assert(!phase_transition_legal(PHASE__MAX, PHASE_INIT));
	for (int to = 0; to < PHASE__MAX; to++) {
		ck_assert(!phase_transition_legal(PHASE_DONE, (enum phase)to));
		ck_assert(!phase_transition_legal(PHASE_ABORTED, (enum phase)to));
		ck_assert(!phase_transition_legal(PHASE_ROLLED_BACK, (enum phase)to));
	}
	ck_assert(phase_is_terminal(PHASE_DONE));
	ck_assert(!phase_is_terminal(PHASE_WATCHING));
}
END_TEST

START_TEST(test_owner)
{
	ck_assert_int_eq(phase_owner(PHASE_SYNCED), OWNER_SOURCE);
	ck_assert_int_eq(phase_owner(PHASE_FROZEN), OWNER_SOURCE);
	ck_assert_int_eq(phase_owner(PHASE_WATCHING), OWNER_TARGET);
	ck_assert_int_eq(phase_owner(PHASE_ROLLED_BACK), OWNER_SOURCE);
	ck_assert_str_eq(owner_name(OWNER_TARGET), "target");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("phase");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_names_round_trip);
	tcase_add_test(tc, test_happy_path_is_legal);
	tcase_add_test(tc, test_ways_back);
	tcase_add_test(tc, test_illegal_and_terminal);
	tcase_add_test(tc, test_owner);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
