// SPDX-License-Identifier: MIT
// cluster.c: the integration tests' local cluster.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static idn_tcluster *live[8];

static void
down_all(void)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] != NULL) {
			idn_tcluster_down(live[i]);
		}
	}
}

int
idn_tcluster_cli(idn_tcluster *c, char **out, const char *fmt, ...)
{
	char prefix[2 * PATH_MAX];
	snprintf(prefix, sizeof(prefix), "'%.4000s/idunno' --root '%.4000s' ",
	    idn_test_bin_dir(), c->root);
	va_list ap;
	va_start(ap, fmt);
	int rv = idn_test_vrun(out, prefix, fmt, ap);
	va_end(ap);
	return rv;
}

typedef struct {
	idn_tcluster *c;
	int want;
} conv_arg;

static bool
converged(void *arg)
{
	conv_arg *a = arg;
	char name[16];
	for (int i = 0; i < a->c->n; i++) {
		snprintf(name, sizeof(name), "%d", i);
		if (idn_tcluster_count(a->c, name, IDN_MEMBER_ALIVE) != a->want) {
			return false;
		}
	}
	return true;
}

int
idn_tcluster_up(idn_tcluster *c, int n)
{
	return idn_tcluster_up_with(c, n, "");
}

int
idn_tcluster_up_with(idn_tcluster *c, int n, const char *up_args)
{
	static bool registered;
	const char *dir = idn_test_tmpdir();
	if (dir == NULL) {
		return IDN_ESYS;
	}
	memset(c, 0, sizeof(*c));
	snprintf(c->root, sizeof(c->root), "%s/cluster", dir);
	c->n = n;
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] == NULL) {
			live[i] = c;
			break;
		}
	}
	if (!registered) {
		registered = true;
		atexit(down_all);
	}
	// Nodes run in sessions of their own: if this process dies before
	// its teardown, the reaper stops them.
	idn_test_at_death("'%.4000s/idunno' --root '%.4000s' cluster down "
	    ">/dev/null 2>&1 || true", idn_test_bin_dir(), c->root);
	char *out = NULL;
	int rv = idn_tcluster_cli(c, &out, "cluster up -n %d %s", n, up_args);
	free(out);
	if (rv != 0) {
		return IDN_ESYS;
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/cluster.key", c->root);
	if ((rv = idn_key_load(path, c->key)) != IDN_OK) {
		return rv;
	}
	conv_arg a = {c, n};
	return idn_test_wait(converged, &a, 20000) ? IDN_OK : IDN_ETIMEDOUT;
}

int
idn_tcluster_wait_alive(idn_tcluster *c, int timeout_ms)
{
	conv_arg a = {c, c->n};
	return idn_test_wait(converged, &a, timeout_ms) ? IDN_OK :
	    IDN_ETIMEDOUT;
}

void
idn_tcluster_down(idn_tcluster *c)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] == c) {
			live[i] = NULL;
			char *out = NULL;
			idn_tcluster_cli(c, &out, "cluster down");
			free(out);
		}
	}
}

static int
node_cmd(idn_tcluster *c, const char *verb, const char *node)
{
	int rv = idn_tcluster_cli(c, NULL, "cluster %s %s >/dev/null", verb,
	    node);
	return rv == 0 ? IDN_OK : IDN_ESYS;
}

int
idn_tcluster_kill(idn_tcluster *c, const char *node)
{
	return node_cmd(c, "kill", node);
}

int
idn_tcluster_restart(idn_tcluster *c, const char *node)
{
	// A node killed just now may still hold its pid or port for a moment.
	uint64_t deadline = idn_test_now_ms() + 10000;
	int rv;
	while ((rv = node_cmd(c, "restart", node)) != IDN_OK &&
	    idn_test_now_ms() < deadline) {
		usleep(100 * 1000);
	}
	return rv;
}

pid_t
idn_tcluster_pid(idn_tcluster *c, const char *node)
{
	char *out = NULL;
	pid_t pid = -1;
	char *end;
	long want = strtol(node, &end, 10);
	int idx = 0;
	if (*end != '\0') {
		want = -1;
	}
	idn_tcluster_cli(c, &out, "cluster status");
	for (char *l = out ? strtok(out, "\n") : NULL; l != NULL;
	     l = strtok(NULL, "\n")) {
		char n[32], role[16];
		int p;
		if (sscanf(l, "%31s %15s pid %d", n, role, &p) != 3) {
			continue;
		}
		if (idx++ == want || strcmp(n, node) == 0) {
			pid = p;
			break;
		}
	}
	free(out);
	return pid;
}

const char *
idn_tcluster_addr(idn_tcluster *c, const char *node)
{
	static char addr[64];
	char path[PATH_MAX + 32], name[32], role[16];
	int pid, idx = -1;
	char *end;
	long want = strtol(node, &end, 10);
	if (*end != '\0') {
		want = -1;
	}
	snprintf(path, sizeof(path), "%s/cluster.state", c->root);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return NULL;
	}
	const char *found = NULL;
	char line[256];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%31s %15s %d %63s", name, role, &pid,
		        addr) != 4) {
			continue;
		}
		idx++;
		if (idx == want || strcmp(name, node) == 0) {
			found = addr;
			break;
		}
	}
	fclose(f);
	return found;
}

int
idn_tcluster_index(idn_tcluster *c, const char *addr)
{
	for (int i = 0; i < c->n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%d", i);
		const char *a = idn_tcluster_addr(c, k);
		if (a != NULL && strcmp(a, addr) == 0) {
			return i;
		}
	}
	return -1;
}

int
idn_tcluster_client(idn_tcluster *c, const char *node, int timeout_ms,
    idn_client **out)
{
	const char *addr = idn_tcluster_addr(c, node);
	if (addr == NULL) {
		return IDN_ENOENT;
	}
	int rv = idn_client_open(addr, c->key, out);
	if (rv == IDN_OK) {
		idn_client_set_timeout(*out, timeout_ms);
	}
	return rv;
}

int
idn_tcluster_members(idn_tcluster *c, const char *node, idn_member **out,
    size_t *n)
{
	idn_client *cl;
	int rv = idn_tcluster_client(c, node, 2000, &cl);
	if (rv == IDN_OK) {
		rv = idn_client_members(cl, out, n);
		idn_client_close(cl);
	}
	return rv;
}

int
idn_tcluster_count(idn_tcluster *c, const char *node, int state)
{
	idn_member *m;
	size_t n;
	if (idn_tcluster_members(c, node, &m, &n) != IDN_OK) {
		return -1;
	}
	int k = 0;
	for (size_t i = 0; i < n; i++) {
		k += m[i].state == state;
	}
	idn_free(m);
	return k;
}
