/* engine_userdb_find: a User or group name of an image config resolved in the image's own
 * /etc/passwd or /etc/group, which the image's author wrote: malformed lines are skipped,
 * never trusted. */
#include <criterion/criterion.h>
#include <string.h>

#include "engine/internal.h"

static const char etc_passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
				 "# a comment line\n"
				 "broken:x:1000\n"
				 "plus:x:+5:5::/:/bin/sh\n"
				 "wrap:x:4294967296:1::/:/bin/sh\n"
				 "wrap:x:77:78::/:/bin/sh\n"
				 "appuser:x:1234:2345::/home/app:/bin/sh\n"
				 "appuser:x:9:9::/twin:/bin/sh\n"
				 "app:x:1:1::/:/bin/sh\n"
				 "last:x:4294967295:7";

static int find(const char *text, const char *name, uint32_t *id, uint32_t *gid)
{
	return engine_userdb_find(text, strlen(text), name, id, gid);
}

Test(engine_userdb, finds_a_user_and_its_group)
{
	uint32_t u = 0, g = 0;
	cr_assert_eq(find(etc_passwd, "appuser", &u, &g), 1);
	cr_assert_eq(u, 1234);
	cr_assert_eq(g, 2345);
	cr_assert_eq(find(etc_passwd, "root", &u, &g), 1);
	cr_assert_eq(u, 0);
}

Test(engine_userdb, a_name_matches_whole_never_as_a_prefix)
{
	uint32_t u = 0, g = 0;
	cr_assert_eq(find(etc_passwd, "app", &u, &g), 1);
	cr_assert_eq(u, 1);
	cr_assert_eq(find(etc_passwd, "appuse", &u, &g), 0);
	cr_assert_eq(find(etc_passwd, "", &u, &g), 0);
}

Test(engine_userdb, malformed_ids_are_skipped_for_the_next_entry)
{
	uint32_t u = 0, g = 0;
	cr_assert_eq(find(etc_passwd, "broken", &u, &g), 0);
	cr_assert_eq(find(etc_passwd, "plus", &u, &g), 0);
	cr_assert_eq(find(etc_passwd, "wrap", &u, &g), 1);
	cr_assert_eq(u, 77);
	cr_assert_eq(g, 78);
}

Test(engine_userdb, the_last_line_needs_no_newline)
{
	uint32_t u = 0, g = 0;
	cr_assert_eq(find(etc_passwd, "last", &u, &g), 1);
	cr_assert_eq(u, 4294967295u);
	cr_assert_eq(g, 7);
}

Test(engine_userdb, a_group_file_has_no_fourth_id)
{
	const char group[] = "root:x:0:\nappgroup:x:3456:alice,bob\nshort:x\n";
	uint32_t gid = 0;
	cr_assert_eq(find(group, "appgroup", &gid, NULL), 1);
	cr_assert_eq(gid, 3456);
	cr_assert_eq(find(group, "short", &gid, NULL), 0);
}

Test(engine_userdb, stops_at_len_not_at_a_nul)
{
	const char text[] = "a:x:1:1\nb:x:2:2\n";
	uint32_t u = 0, g = 0;
	cr_assert_eq(engine_userdb_find(text, 8, "b", &u, &g), 0);
	cr_assert_eq(engine_userdb_find(text, sizeof(text) - 1, "b", &u, &g), 1);
	cr_assert_eq(u, 2);
}
