// SPDX-License-Identifier: MIT
// cli_test.c: every command of idunno (as `idunno --commands` lists them,
// so a new one is covered) and the node programs read their command line
// alike: --help prints the usage and exits 0 with no cluster and no key;
// an unknown option, a missing value and a bad number exit 2 naming the
// option.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char idunno[2 * PATH_MAX]; // with no cluster and no key

// Runs prog with args (which redirect stderr as they need) and asserts
// the exit code and that the output holds want.
static void
run(const char *prog, int code, const char *want, const char *args)
{
	char *out = NULL;
	int rv = th_sh(&out, "%s %s", prog, args);
	if (rv != code || strstr(out, want) == NULL) {
		fail_msg("'%s': exit %d, output '%s' (want %d and '%s')", args,
		    rv, out, code, want);
	}
	free(out);
}

static void
expect(int code, const char *want, const char *args)
{
	run(idunno, code, want, args);
}

// The checks of one command; value: an option that takes a value, num:
// one that takes a number ("" when it has none).
static void
check_cmd(const char *name, const char *value, const char *num)
{
	char args[512], want[256];
	snprintf(args, sizeof(args), "%s --help 2>/dev/null", name);
	snprintf(want, sizeof(want), "usage: idunno %s", name);
	expect(0, want, args);
	snprintf(args, sizeof(args), "%s --no-such-option 2>&1", name);
	expect(2, "unknown option '--no-such-option'", args);
	if (*value != '\0') {
		snprintf(args, sizeof(args), "%s %s 2>&1", name, value);
		snprintf(want, sizeof(want), "option '%s' needs a value",
		    value);
		expect(2, want, args);
	}
	if (*num != '\0') {
		snprintf(args, sizeof(args), "%s %s x1 2>&1", name, num);
		snprintf(want, sizeof(want), "%s: 'x1' is not", num);
		expect(2, want, args);
	}
}

static void
test_every_command(void **st)
{
	char *out = NULL;
	assert_int_equal(th_sh(&out, "%s --commands", idunno), 0);
	size_t ncmd = 0, nvalue = 0, nnum = 0;
	char groups[1024] = " ", *line_end;
	for (char *line = strtok_r(out, "\n", &line_end); line != NULL;
	    line = strtok_r(NULL, "\n", &line_end)) {
		// "train add --model=STR --epochs=INT --json": the words, then
		// the options (=KIND: it takes a value).
		char name[128] = "", value[64] = "", num[64] = "", *tok_end;
		for (char *t = strtok_r(line, " ", &tok_end); t != NULL;
		    t = strtok_r(NULL, " ", &tok_end)) {
			char *eq = strchr(t, '=');
			if (t[0] != '-') {
				snprintf(name + strlen(name), sizeof(name) -
				    strlen(name), "%s%s", *name ? " " : "", t);
			} else if (eq != NULL) {
				*eq = '\0';
				bool number = strcmp(eq + 1, "INT") == 0 ||
				    strcmp(eq + 1, "NUM") == 0;
				if (*value == '\0') {
					snprintf(value, sizeof(value), "%s", t);
				}
				if (number && *num == '\0') {
					snprintf(num, sizeof(num), "%s", t);
				}
			}
		}
		check_cmd(name, value, num);
		ncmd++;
		nvalue += *value != '\0';
		nnum += *num != '\0';
		// A group ("train" of "train add") answers --help too.
		char *sp = strchr(name, ' '), g[130];
		if (sp != NULL) {
			*sp = '\0';
			snprintf(g, sizeof(g), " %s ", name);
			if (strstr(groups, g) == NULL) {
				strncat(groups, g + 1, sizeof(groups) -
				    strlen(groups) - 1);
			}
		}
	}
	free(out);
	print_message("# %zu commands: %zu take a value, %zu a number; "
	    "groups%s\n", ncmd, nvalue, nnum, groups);
	assert_true(ncmd >= 20 && nvalue >= 5 && nnum >= 5);
	for (char *g = strtok_r(groups, " ", &line_end); g != NULL;
	    g = strtok_r(NULL, " ", &line_end)) {
		char args[256], want[256];
		snprintf(args, sizeof(args), "%s --help 2>/dev/null", g);
		snprintf(want, sizeof(want), "usage: idunno %s", g);
		expect(0, want, args);
		snprintf(args, sizeof(args), "%s no-such-command 2>&1", g);
		expect(2, "unknown command", args);
	}
}

// idunno's own options, before the command.
static void
test_idunno_options(void **st)
{
	expect(0, "usage: idunno", "--help 2>/dev/null");
	expect(2, "unknown option '--no-such-option'",
	    "--no-such-option members 2>&1");
	expect(2, "option '--timeout' needs a value", "--timeout 2>&1");
	expect(2, "--timeout: 'x1' is not", "--timeout x1 members 2>&1");
	expect(2, "unknown command 'no-such-command'", "no-such-command 2>&1");
	// Past the parsing, no cluster is a runtime error.
	expect(1, "no such file", "members 2>&1");
}

static void
test_node_programs(void **st)
{
	static const char *const progs[] = {"idunno-coord", "idunno-worker"};
	char prog[PATH_MAX + 32];
	for (size_t i = 0; i < 2; i++) {
		snprintf(prog, sizeof(prog), "'%s/%s'", th_bin_dir(), progs[i]);
		run(prog, 0, "usage:", "--help 2>/dev/null");
		run(prog, 2, "unknown option '--no-such-option'",
		    "--no-such-option 2>&1");
		run(prog, 2, "option '--data' needs a value", "--data 2>&1");
	}
	run(prog, 2, "--model-cpu: 'x1' is not", "--model-cpu x1 2>&1");
}

static int
setup(void **st)
{
	const char *dir = th_tmpdir();
	snprintf(idunno, sizeof(idunno), "'%s/idunno' --root '%s' --key "
	    "'%s/no-key'", th_bin_dir(), dir, dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_command),
	    cmocka_unit_test(test_idunno_options),
	    cmocka_unit_test(test_node_programs),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
