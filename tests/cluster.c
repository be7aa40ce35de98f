// SPDX-License-Identifier: MIT
// cluster.c: the integration tests' local cluster.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

static th_cluster *live[8];

static void
down_all(void)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] != NULL) {
			th_cluster_down(live[i]);
		}
	}
}

int
th_cluster_cli(th_cluster *c, char **out, const char *fmt, ...)
{
	char prefix[2 * PATH_MAX];
	snprintf(prefix, sizeof(prefix), "'%.4000s/idunno' --root '%.4000s' ",
	    th_bin_dir(), c->root);
	va_list ap;
	va_start(ap, fmt);
	int rv = th_vrun(out, prefix, fmt, ap);
	va_end(ap);
	return rv;
}

typedef struct {
	th_cluster *c;
	int want;
} conv_arg;

static bool
converged(void *arg)
{
	conv_arg *a = arg;
	char name[16];
	for (int i = 0; i < a->c->n; i++) {
		snprintf(name, sizeof(name), "%d", i);
		if (th_cluster_count(a->c, name, IDN_MEMBER_ALIVE) != a->want) {
			return false;
		}
	}
	return true;
}

int
th_cluster_up(th_cluster *c, int n)
{
	return th_cluster_up_with(c, n, "");
}

int
th_cluster_up_with(th_cluster *c, int n, const char *up_args)
{
	static bool registered;
	const char *dir = th_tmpdir();
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
	// its teardown, the reaper stops them, also one a `cluster restart`
	// killed with us had spawned but not yet written down ([-] keeps
	// pkill's pattern from matching the shell that runs it).
	th_at_death("'%.4000s/idunno' --root '%.4000s' cluster down "
	    ">/dev/null 2>&1; pkill -KILL -f -- '[-]-data %.4000s/' || true",
	    th_bin_dir(), c->root, c->root);
	char *out = NULL;
	int rv = th_cluster_cli(c, &out, "cluster up -n %d %s", n, up_args);
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
	return th_wait(converged, &a, 20000) ? IDN_OK : IDN_ETIMEDOUT;
}

int
th_cluster_wait_alive(th_cluster *c, int timeout_ms)
{
	conv_arg a = {c, c->n};
	return th_wait(converged, &a, timeout_ms) ? IDN_OK :
	    IDN_ETIMEDOUT;
}

void
th_cluster_down(th_cluster *c)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] == c) {
			live[i] = NULL;
			char *out = NULL;
			th_cluster_cli(c, &out, "cluster down");
			free(out);
		}
	}
}

static int
node_cmd(th_cluster *c, const char *verb, const char *node)
{
	int rv = th_cluster_cli(c, NULL, "cluster %s %s >/dev/null", verb,
	    node);
	return rv == 0 ? IDN_OK : IDN_ESYS;
}

int
th_cluster_kill(th_cluster *c, const char *node)
{
	return node_cmd(c, "kill", node);
}

int
th_cluster_restart(th_cluster *c, const char *node)
{
	// A node killed just now may still hold its pid or port for a moment.
	uint64_t deadline = th_now_ms() + 10000;
	int rv;
	while ((rv = node_cmd(c, "restart", node)) != IDN_OK &&
	    th_now_ms() < deadline) {
		usleep(100 * 1000);
	}
	return rv;
}

pid_t
th_cluster_pid(th_cluster *c, const char *node)
{
	char *out = NULL;
	pid_t pid = -1;
	char *end;
	long want = strtol(node, &end, 10);
	int idx = 0;
	if (*end != '\0') {
		want = -1;
	}
	th_cluster_cli(c, &out, "cluster status");
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
th_cluster_addr(th_cluster *c, const char *node)
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
th_cluster_index(th_cluster *c, const char *addr)
{
	for (int i = 0; i < c->n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%d", i);
		const char *a = th_cluster_addr(c, k);
		if (a != NULL && strcmp(a, addr) == 0) {
			return i;
		}
	}
	return -1;
}

int
th_cluster_client(th_cluster *c, const char *node, int timeout_ms,
    idn_client **out)
{
	const char *addr = th_cluster_addr(c, node);
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
th_cluster_members(th_cluster *c, const char *node, idn_member **out,
    size_t *n)
{
	idn_client *cl;
	int rv = th_cluster_client(c, node, 2000, &cl);
	if (rv == IDN_OK) {
		rv = idn_client_members(cl, out, n);
		idn_client_close(cl);
	}
	return rv;
}

int
th_cluster_count(th_cluster *c, const char *node, int state)
{
	idn_member *m;
	size_t n;
	if (th_cluster_members(c, node, &m, &n) != IDN_OK) {
		return -1;
	}
	int k = 0;
	for (size_t i = 0; i < n; i++) {
		k += m[i].state == state;
	}
	idn_free(m);
	return k;
}
