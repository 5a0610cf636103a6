/* passwd_home: the home of a uid in an /etc/passwd text, as runc and crun find it for
 * HOME; malformed lines are skipped, never trusted. */
#include <criterion/criterion.h>
#include <string.h>

#include "oci/passwd.h"

static const char etc_passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
				 "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
				 "# a comment line\n"
				 "broken:x:1000\n"
				 "nohome:x:1001:1001:gecos::/bin/sh\n"
				 "app:x:1000:1000:App,,,:/home/app:/bin/sh\n"
				 "twin:x:1000:1000::/home/twin:/bin/sh\n"
				 "last:x:4294967295:1::/nonexistent";

static int home_of(const char *text, uint32_t uid, char *out, size_t size)
{
	return passwd_home(text, strlen(text), uid, out, size);
}

Test(passwd, finds_the_home_of_a_uid)
{
	char h[64];
	cr_assert_eq(home_of(etc_passwd, 0, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/root");
	cr_assert_eq(home_of(etc_passwd, 1, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/usr/sbin");
}

Test(passwd, the_first_well_formed_entry_wins)
{
	char h[64];
	cr_assert_eq(home_of(etc_passwd, 1000, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/home/app");
}

Test(passwd, last_line_without_newline_and_the_largest_uid)
{
	char h[64];
	cr_assert_eq(home_of(etc_passwd, 4294967295u, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/nonexistent");
}

Test(passwd, unknown_uid_or_empty_home_is_not_found)
{
	char h[64] = "unchanged";
	cr_assert_eq(home_of(etc_passwd, 4242, h, sizeof(h)), 0);
	cr_assert_eq(home_of(etc_passwd, 1001, h, sizeof(h)), 0);
	cr_assert_eq(home_of("", 0, h, sizeof(h)), 0);
	cr_assert_str_eq(h, "unchanged");
}

Test(passwd, malformed_uids_never_match)
{
	char h[64];
	cr_assert_eq(home_of("a:x:+0:0::/plus:/bin/sh\n", 0, h, sizeof(h)), 0);
	cr_assert_eq(home_of("a:x: 0:0::/space:/bin/sh\n", 0, h, sizeof(h)), 0);
	cr_assert_eq(home_of("a:x::0::/empty:/bin/sh\n", 0, h, sizeof(h)), 0);
	cr_assert_eq(home_of("a:x:4294967296:0::/wrap:/bin/sh\n", 0, h, sizeof(h)), 0);
	cr_assert_eq(home_of("a:x:00000000000:0::/long:/bin/sh\n", 0, h, sizeof(h)), 0);
}

Test(passwd, a_home_that_does_not_fit_is_not_cut)
{
	char h[8];
	cr_assert_eq(home_of("a:x:5:5::/home/toolong:/bin/sh\n", 5, h, sizeof(h)), 0);
	cr_assert_eq(home_of("a:x:5:5::/home/a:/bin/sh\n", 5, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/home/a");
}

Test(passwd, no_shell_field_is_still_an_entry)
{
	char h[64];
	cr_assert_eq(home_of("a:x:7:7::/seven\n", 7, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/seven");
}

Test(passwd, a_nul_inside_the_text_is_not_a_home)
{
	static const char text[] = "a:x:3:3::/ho\0me:/bin/sh\nb:x:3:3::/ok:/bin/sh\n";
	char h[64];
	cr_assert_eq(passwd_home(text, sizeof(text) - 1, 3, h, sizeof(h)), 1);
	cr_assert_str_eq(h, "/ok");
}
