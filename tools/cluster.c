// SPDX-License-Identifier: MIT
// cluster.c: starts, stops, kills and restarts a local cluster's nodes as
// child processes, and keeps their pids and addresses in ROOT/cluster.state.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <idunno/idunno.h>

#include "cli.h"
#include "cluster.h"

#define START_TIMEOUT_MS 15000

const char *
cluster_key_path(const char *root)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cluster.key", root);
	return path;
}

// The start time of a process (field 22 of /proc/PID/stat, clock ticks
// since boot); 0 if it cannot be read.
static unsigned long long
proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return 0;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	// The command name (field 2) may hold spaces: count after its ')'.
	char *p = strrchr(buf, ')');
	unsigned long long start = 0;
	char state;
	if (p == NULL || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u "
	                     "%*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	                     &state, &start) != 2 || state == 'Z') {
		return 0; // a zombie child is dead for our purpose
	}
	return start;
}

// A pid is ours only if it still runs one of our node programs and
// started when the one we launched did: pids are reused, and we must never
// signal a stranger.
static bool
pid_is_node(pid_t pid, unsigned long long start)
{
	char path[64], cmd[256] = {0};
	if (pid <= 0 || kill(pid, 0) != 0) {
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return false;
	}
	size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
	fclose(f);
	cmd[n] = '\0';
	unsigned long long now = proc_start(pid);
	// start 0: a state file from before start times were kept.
	return strstr(cmd, "idunno-") != NULL && now != 0 &&
	    (start == 0 || now == start);
}

int
cluster_load(const char *root, cluster_node **out, int *n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cluster.state", root);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return -1;
	}
	cluster_node *v = NULL;
	int k = 0, cap = 0;
	cluster_node c;
	int pid;
	char line[256];
	while (fgets(line, sizeof(line), f) != NULL) {
		c.start = 0;
		c.cpu = -1;
		if (sscanf(line, "%31s %15s %d %63s %llu %d", c.name, c.role,
		        &pid, c.addr, &c.start, &c.cpu) < 4) {
			continue;
		}
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			cluster_node *p = realloc(v, sizeof(*v) * (size_t) cap);
			if (p == NULL) {
				break;
			}
			v = p;
		}
		c.pid = pid;
		c.alive = pid_is_node(c.pid, c.start);
		v[k++] = c;
	}
	fclose(f);
	*out = v;
	*n = k;
	return 0;
}

static int
cluster_save(const char *root, const cluster_node *v, int n)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/cluster.state", root);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (f == NULL) {
		return -1;
	}
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s %s %d %s %llu %d\n", v[i].name, v[i].role,
		    (int) v[i].pid, v[i].addr, v[i].start, v[i].cpu);
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		return -1;
	}
	return 0;
}

int
cluster_pick_addr(const char *root, char *addr, size_t cap)
{
	cluster_node *v;
	int n;
	if (cluster_load(root, &v, &n) != 0) {
		return -1;
	}
	int rv = -1;
	for (int i = 0; i < n && rv != 0; i++) {
		if (v[i].alive) {
			snprintf(addr, cap, "%s", v[i].addr);
			rv = 0;
		}
	}
	free(v);
	return rv;
}

static void
self_dir(char *dir, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
	dir[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
	} else {
		snprintf(dir, cap, ".");
	}
}

// The model CPUs of the pinned workers in v (empty without --pin).
static void
model_cpus(const cluster_node *v, int n, cpu_set_t *set)
{
	CPU_ZERO(set);
	for (int i = 0; i < n; i++) {
		if (v[i].cpu >= 0) {
			CPU_SET((size_t) v[i].cpu, set);
		}
	}
}

// In the child: a node without a model CPU of its own (coordinator,
// standby) stays off the workers' ones while other CPUs remain.
static void
keep_off(const cluster_node *c, const cpu_set_t *off)
{
	if (c->cpu < 0 && CPU_COUNT(off) > 0) {
		(void) tool_cpus_off(off);
	}
}

// Starts one node detached from our terminal and waits until it has
// written its address file. Returns the pid, or -1 with a message printed.
static pid_t
spawn(const char *root, cluster_node *c, const char *const *joins, int njoin,
    const cpu_set_t *off)
{
	char bin[PATH_MAX + 32], dir[PATH_MAX], data[PATH_MAX + 64],
	    addrf[PATH_MAX + 80], errf[PATH_MAX + 80];
	self_dir(dir, sizeof(dir));
	bool coordish = strcmp(c->role, "worker") != 0;
	snprintf(bin, sizeof(bin), "%s/%s", dir,
	    coordish ? "idunno-coord" : "idunno-worker");
	snprintf(data, sizeof(data), "%s/%s", root, c->name);
	snprintf(addrf, sizeof(addrf), "%s/node.addr", data);
	snprintf(errf, sizeof(errf), "%s/%s.stderr", root, c->name);
	mkdir(data, 0700);
	unlink(addrf);
	const char *argv[18 + 2 * 64];
	char cpu[16];
	int k = 0;
	argv[k++] = bin;
	argv[k++] = "--data";
	argv[k++] = data;
	argv[k++] = "--key";
	argv[k++] = cluster_key_path(root);
	argv[k++] = "--listen";
	argv[k++] = strcmp(c->addr, "-") == 0 ? "127.0.0.1:0" : c->addr;
	if (strcmp(c->role, "standby") == 0) {
		argv[k++] = "--standby";
	}
	if (coordish) {
		argv[k++] = "--http";
		argv[k++] = "127.0.0.1:0";
	}
	if (c->cpu >= 0) {
		snprintf(cpu, sizeof(cpu), "%d", c->cpu);
		argv[k++] = "--model-cpu";
		argv[k++] = cpu;
	}
	for (int i = 0; i < njoin && i < 64; i++) {
		argv[k++] = "--join";
		argv[k++] = joins[i];
	}
	argv[k] = NULL;
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "idunno: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		setsid();
		keep_off(c, off);
		int fd = open(errf, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int null = open("/dev/null", O_RDWR);
		if (fd >= 0 && null >= 0) {
			dup2(null, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(bin, (char *const *) argv);
		_exit(127);
	}
	uint64_t deadline = idn_clock_ms() + START_TIMEOUT_MS;
	while (idn_clock_ms() < deadline) {
		FILE *f = fopen(addrf, "re");
		if (f != NULL) {
			int ok = fscanf(f, "%63s", c->addr) == 1;
			fclose(f);
			if (ok) {
				c->pid = pid;
				c->start = proc_start(pid);
				return pid;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char why[256] = "";
			FILE *e = fopen(errf, "re");
			// The node's last line says why (bad address, port in
			// use, no introducer...).
			while (e != NULL && fgets(why, sizeof(why), e) != NULL) {
			}
			if (e != NULL) {
				fclose(e);
			}
			why[strcspn(why, "\n")] = '\0';
			fprintf(stderr, "idunno: node %s exited at start: %s "
			    "(see %s)\n", c->name, why, errf);
			return -1;
		}
		usleep(20 * 1000);
	}
	kill(pid, SIGKILL);
	fprintf(stderr, "idunno: node %s did not start within %d ms (see %s)\n",
	    c->name, START_TIMEOUT_MS, errf);
	return -1;
}

// Stops every node still running; returns how many there were.
static int
stop_all(cluster_node *v, int n)
{
	int running = 0;
	for (int i = 0; i < n; i++) {
		v[i].alive = v[i].alive && pid_is_node(v[i].pid, v[i].start);
		if (v[i].alive) {
			kill(v[i].pid, SIGTERM);
			running++;
		}
	}
	uint64_t deadline = idn_clock_ms() + 5000;
	for (int i = 0; i < n; i++) {
		while (v[i].alive && pid_is_node(v[i].pid, v[i].start) &&
		    idn_clock_ms() < deadline) {
			usleep(20 * 1000);
		}
		if (pid_is_node(v[i].pid, v[i].start)) {
			kill(v[i].pid, SIGKILL);
		}
		v[i].alive = false;
	}
	return running;
}

// Worker k's model CPU: the CPUs this process may use, from the last down
// (CPU 0 tends to take the machine's interrupts); -1 with a single CPU,
// where pinning would only take the housekeeping's CPU away.
static int
pin_cpu(int k)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0 ||
	    CPU_COUNT(&set) < 2) {
		return -1;
	}
	int cpus[CPU_SETSIZE], n = 0;
	for (int c = CPU_SETSIZE - 1; c >= 0; c--) {
		if (CPU_ISSET((size_t) c, &set)) {
			cpus[n++] = c;
		}
	}
	return cpus[k % n];
}

static int
cmd_up(cli *x, int argc, char **argv)
{
	long n = -1;
	bool pin = false;
	const tool_opt opts[] = {TOOL_OPT_LONG("n", &n, 1, 64),
	    TOOL_OPT_FLAG("pin", &pin), {0}};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (n < 0) {
		fprintf(stderr, "idunno cluster up: -n N is required\n");
		return TOOL_USAGE;
	}
	const char *root = cli_root(x);
	cluster_node *old;
	int nold;
	if (cluster_load(root, &old, &nold) == 0) {
		bool any = false;
		for (int i = 0; i < nold; i++) {
			any = any || old[i].alive;
		}
		free(old);
		if (any) {
			fprintf(stderr, "idunno: a cluster is already running "
			    "in %s (run 'cluster down' first)\n", root);
			return 1;
		}
	}
	rv = mkdir(root, 0700);
	if (rv != 0 && errno != EEXIST) {
		fprintf(stderr, "idunno: cannot create %s: %s\n", root,
		    strerror(errno));
		return 1;
	}
	// The root holds the key and every node's data: its owner's only.
	struct stat sb;
	if (lstat(root, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
	    (sb.st_mode & 077) != 0 || sb.st_uid != geteuid()) {
		fprintf(stderr, "idunno: %s must be a folder that only its "
		    "owner can open (mode %03o; run 'chmod 700 %s')\n", root,
		    (unsigned) (sb.st_mode & 0777), root);
		return 1;
	}
	// A key that exists is used or refused, never replaced: nodes of
	// this cluster may hold it still.
	uint8_t key[IDN_KEY_BYTES];
	rv = idn_key_load(cluster_key_path(root), key);
	if (rv == IDN_ENOENT) {
		rv = idn_key_create(cluster_key_path(root), key);
	}
	if (rv != IDN_OK) {
		tool_key_error("idunno", cluster_key_path(root), rv);
		return 1;
	}
	cluster_node *v = calloc((size_t) n, sizeof(*v));
	if (v == NULL) {
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *role = i == 0 ? "coord" : i == 1 ? "standby" :
		    "worker";
		snprintf(v[i].role, sizeof(v[i].role), "%s", role);
		if (i < 2) {
			snprintf(v[i].name, sizeof(v[i].name), "%s", role);
		} else {
			snprintf(v[i].name, sizeof(v[i].name), "worker%d",
			    i - 1);
		}
		snprintf(v[i].addr, sizeof(v[i].addr), "-");
		v[i].cpu = pin && i >= 2 ? pin_cpu(i - 2) : -1;
	}
	cpu_set_t off;
	model_cpus(v, n, &off);
	for (int i = 0; i < n; i++) {
		const char *join[1] = {v[0].addr};
		if (spawn(root, &v[i], join, i == 0 ? 0 : 1, &off) < 0) {
			stop_all(v, i);
			free(v);
			return 1;
		}
		v[i].alive = true;
		cluster_save(root, v, i + 1);
	}
	for (int i = 0; i < n; i++) {
		printf("%-10s %-8s pid %-7d %s\n", v[i].name, v[i].role,
		    (int) v[i].pid, v[i].addr);
	}
	free(v);
	return 0;
}

static int
find(cluster_node *v, int n, const char *what)
{
	char *end;
	long idx = strtol(what, &end, 10);
	if (*what != '\0' && *end == '\0') {
		return idx >= 0 && idx < n ? (int) idx : -1;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(v[i].name, what) == 0 ||
		    strcmp(v[i].addr, what) == 0) {
			return i;
		}
	}
	return -1;
}

// kill, stop and restart: argv[0] says which.
static int
cmd_node(cli *x, int argc, char **argv)
{
	const tool_opt opts[] = {{0}};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *root = cli_root(x), *verb = argv[0], *name = argv[first];
	cluster_node *v;
	int n;
	if (cluster_load(root, &v, &n) != 0) {
		fprintf(stderr, "idunno: no cluster in %s\n", root);
		return 1;
	}
	int i = find(v, n, name);
	rv = 0;
	if (i < 0) {
		fprintf(stderr, "idunno: no node '%s' in %s\n", name, root);
		rv = 1;
	} else if (strcmp(verb, "kill") == 0 || strcmp(verb, "stop") == 0) {
		if (!v[i].alive) {
			fprintf(stderr, "idunno: %s is not running\n",
			    v[i].name);
			rv = 1;
		} else if (strcmp(verb, "stop") == 0) {
			stop_all(&v[i], 1);
			printf("stopped %s (pid %d)\n", v[i].name,
			    (int) v[i].pid);
		} else {
			kill(v[i].pid, SIGKILL);
			printf("killed %s (pid %d)\n", v[i].name,
			    (int) v[i].pid);
		}
	} else if (v[i].alive) {
		fprintf(stderr, "idunno: %s is running (kill it first)\n",
		    v[i].name);
		rv = 1;
	} else {
		// Rejoin through every other node that is still running.
		const char *joins[64];
		int nj = 0;
		for (int j = 0; j < n && nj < 64; j++) {
			if (j != i && v[j].alive) {
				joins[nj++] = v[j].addr;
			}
		}
		cpu_set_t off;
		model_cpus(v, n, &off);
		// A process killed a moment ago may still hold its port:
		// try a few times before giving up.
		pid_t pid = -1;
		for (int attempt = 0; attempt < 5 && pid < 0; attempt++) {
			if (attempt > 0) {
				usleep(300 * 1000);
			}
			pid = spawn(root, &v[i], joins, nj, &off);
		}
		if (pid < 0) {
			rv = 1;
		} else {
			v[i].alive = true;
			cluster_save(root, v, n);
			printf("restarted %s (pid %d) at %s\n", v[i].name,
			    (int) v[i].pid, v[i].addr);
		}
	}
	free(v);
	return rv;
}

// The node's dashboard address, the fifth line of its node.addr ("-" or
// missing: none).
static bool
http_addr(const char *root, const cluster_node *c, char *out, size_t cap)
{
	char path[PATH_MAX + 64], line[5][128];
	snprintf(path, sizeof(path), "%s/%s/node.addr", root, c->name);
	FILE *f = fopen(path, "re");
	int n = 0;
	while (f != NULL && n < 5 && fscanf(f, "%127s", line[n]) == 1) {
		n++;
	}
	if (f != NULL) {
		fclose(f);
	}
	if (n < 5 || strcmp(line[4], "-") == 0) {
		return false;
	}
	snprintf(out, cap, "%s", line[4]);
	return true;
}

static int
cmd_status(cli *x, int argc, char **argv)
{
	bool json = false;
	const tool_opt opts[] = {TOOL_OPT_FLAG("json", &json), {0}};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *root = cli_root(x);
	cluster_node *v;
	int n;
	if (cluster_load(root, &v, &n) != 0) {
		fprintf(stderr, "idunno: no cluster in %s\n", root);
		return 1;
	}
	if (json) {
		printf("{\"root\": ");
		tool_json_str(stdout, root);
		printf(", \"nodes\": [");
	}
	for (int i = 0; i < n; i++) {
		char http[128];
		bool has_http = v[i].alive &&
		    http_addr(root, &v[i], http, sizeof(http));
		if (json) {
			printf("%s{\"name\": \"%s\", \"role\": \"%s\", "
			    "\"pid\": %d, \"addr\": \"%s\", \"alive\": %s",
			    i ? ", " : "", v[i].name, v[i].role,
			    (int) v[i].pid, v[i].addr,
			    v[i].alive ? "true" : "false");
			if (has_http) {
				printf(", \"http\": ");
				tool_json_str(stdout, http);
			}
			if (v[i].cpu >= 0) {
				printf(", \"model_cpu\": %d", v[i].cpu);
			}
			printf("}");
		} else {
			char cpu[32] = "";
			if (v[i].cpu >= 0) {
				snprintf(cpu, sizeof(cpu), " model on CPU %d",
				    v[i].cpu);
			}
			printf("%-10s %-8s pid %-7d %-22s %-5s%s%s%s\n",
			    v[i].name, v[i].role, (int) v[i].pid, v[i].addr,
			    v[i].alive ? "alive" : "dead",
			    has_http ? " http://" : "", has_http ? http : "",
			    cpu);
		}
	}
	if (json) {
		printf("]}\n");
	}
	free(v);
	return 0;
}

static int
cmd_down(cli *x, int argc, char **argv)
{
	const tool_opt opts[] = {{0}};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	cluster_node *v;
	int n;
	if (cluster_load(cli_root(x), &v, &n) != 0) {
		fprintf(stderr, "idunno: no cluster in %s\n", cli_root(x));
		return 1;
	}
	int running = stop_all(v, n);
	free(v);
	printf("stopped %d nodes\n", running);
	return 0;
}

const cli_cmd cluster_cmds[] = {
	{"cluster up", "-n N [--pin]", "start a coordinator, a standby and N-2 "
	    "workers\non 127.0.0.1 (free ports) under ROOT;\n--pin: each "
	    "worker's model on a CPU of its own\n(from the last CPU down, "
	    "round robin)", 0, 0, false, cmd_up},
	{"cluster down", "", "stop every node (SIGTERM, then SIGKILL)", 0, 0,
	    false, cmd_down},
	{"cluster kill", "NODE", "SIGKILL one node (name, index or address)",
	    1, 1, false, cmd_node},
	{"cluster stop", "NODE", "SIGTERM one node: it leaves the cluster", 1,
	    1, false, cmd_node},
	{"cluster restart", "NODE", "start a node again (a new incarnation)",
	    1, 1, false, cmd_node},
	{"cluster status", "[--json]", "each node: name, role, pid, address, "
	    "alive,\ndashboard (coordinator and standby: http),\na pinned "
	    "worker's model CPU (model_cpu)", 0, 0, false, cmd_status},
	{NULL, NULL, NULL, 0, 0, false, NULL},
};
