// SPDX-License-Identifier: MIT
// server.h: private to libidunno/sdfs/: a node's SDFS state and what its
// parts share. A file calls only files listed after its own: sdfs.c (open,
// close); repair.c; put.c, get.c, list.c; replica.c; version.c, gather.c;
// server.c; the store, ring and records (sdfs_int.h).
#ifndef IDN_SDFS_SERVER_H
#define IDN_SDFS_SERVER_H

#include "sdfs/sdfs.h"
#include "sdfs/sdfs_int.h"

#define R IDN_SDFS_REPLICAS
#define NAME_CAP (IDN_SDFS_NAME_MAX + 1)
#define BAD_PEERS 64
#define BAD_PEER_MS 3000
#define STAT_TIMEOUT_MS 2000
// A replica that does not answer a small request (sdfs.ver, the stat of a
// name, r.begin) within this is taken for dead: the write goes to the next
// live member of the ring instead of waiting until membership declares it
// failed (about 1-3 s, during which every put it is a replica of stalled).
#define ANSWER_MS 300
// The first wait of a watched call to a replica (put.c fan_watch).
#define WATCH_SLICE_MS 1500
#define CHUNK_TIMEOUT_MS 20000
#define READ_TIMEOUT_MS 5000
#define COMMIT_TIMEOUT_MS 120000
#define PULL_TIMEOUT_MS 120000
#define REPLICATE_DEADLINE_MS 90000
#define SESSION_IDLE_MS 120000
#define AE_PERIOD_MS 2000
#define AE_POLL_MS 200
#define RESV_MAX 4096
// Withdrawn versions a replica remembers (sdfs_rep_unput), newest kept.
#define UNPUT_MAX 256
#define OFFERS_PER_CALL 2000
// Names per ls-prefix page: 1000 names of at most 1 KiB fit a message.
#define LIST_PAGE 1000
// Resource bounds: past them a node answers IDN_EBUSY (the client library
// asks again) instead of running out of threads or file descriptors.
#define PUTS_MAX 256   // put sessions open or committing at a front
#define COMMITS_MAX 64 // commit threads at a front
#define RTX_MAX 256    // replica writes (a temp file each) at a replica
// The scrub re-reads every version of every name; a pass starts at most
// every SCRUB_IDLE_MS and reads, per anti-entropy round, the larger of
// SCRUB_MIN_BYTES and the share of the store that ends the pass within
// SCRUB_PASS_MS (so a pass never takes longer: 1 MiB a round is 300 MiB
// in 10 minutes).
#define SCRUB_MIN_BYTES (1u << 20)
#define SCRUB_PASS_MS (10u * 60 * 1000)
#define SCRUB_IDLE_MS 20000
// A copy that lost its version number to another put's is renumbered only
// once it is this old: a put that met the conflict itself withdraws its
// copies within its commit.
#define CONFLICT_SETTLE_MS 5000

typedef struct put_sess {
	struct put_sess *next;
	uint64_t sid;
	char *name;
	uint64_t ver;
	bool tomb;
	size_t nrep;
	char addr[R][IDN_ADDR_MAX];
	bool live[R];
	bool conflict; // a replica holds this version with other bytes
	uint64_t off;
	uint64_t last_ms;
	int state;  // OPEN, COMMITTING, DONE
	int result; // when DONE
	uint64_t size;
	uint8_t sum[IDN_SDFS_SUM_BYTES];
} put_sess;

enum { OPEN, COMMITTING, DONE };

typedef struct rtx {
	struct rtx *next;
	char *name;
	uint64_t ver;
	sdfs_wtx *tx;
	uint64_t last_ms;
} rtx;

typedef struct resv {
	struct resv *next;
	char *name;
	uint64_t ver;
	uint64_t ms;
} resv;

typedef struct pull_job {
	struct pull_job *next;
	char *name;
	uint64_t ver;
	bool resolve; // the version is held here with other bytes: sdfs_resolve
	size_t nsrc;
	char src[R][IDN_ADDR_MAX];
} pull_job;

struct sdfs {
	rpc *rpc;
	sdfs_members_fn members;
	void *members_arg;
	const core_logger *lg;
	sdfs_store *st;
	sdfs_limits lim; // as set (sdfs_limit); the store keeps cache_trust_ms
	char self_addr[IDN_ADDR_MAX];
	// Guards everything below. Never held across I/O or a call.
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stop;
	int commits; // commit threads running
	size_t opening; // put sessions starting (on_put_begin)
	put_sess *puts;
	rtx *rtxs;
	resv *resv;
	size_t nresv;
	// Withdrawn (name, version, sum)s, a ring: a copy of one committed or
	// pulled after it was withdrawn here is dropped again.
	struct {
		char *name;
		uint64_t ver;
		uint8_t sum[IDN_SDFS_SUM_BYTES];
	} unputs[UNPUT_MAX];
	size_t next_unput;
	pull_job *jobs;
	pull_job *inflight; // pulls running now (name, ver), to not repeat
	struct {
		char addr[IDN_ADDR_MAX];
		uint64_t until_ms;
	} bad[BAD_PEERS];
	uint64_t next_sid;
	pthread_t ae_thread;
	pthread_t pull_thread;
	bool ae_started;
	bool pull_started;
	// The scrub's place: the next name, version (the newest one <=
	// scrub_ver) and chunk to check; the current pass's start and size.
	char *scrub_name;
	uint64_t scrub_ver;
	uint32_t scrub_chunk;
	uint64_t scrub_start_ms, scrub_ready_ms, scrub_bytes, scrub_vers;
	_Atomic uint64_t n_put, n_get, n_pull, n_repair; // sdfs_counters
	_Atomic uint64_t fg_write_ms; // clock ms a put last began here
	_Atomic uint64_t n_scrub_passes, n_scrub_ms, last_scrub_ms;
	char *ae_cursor; // last name of the last round, NULL: from the start
};

// A snapshot of the live membership and its ring.
typedef struct view {
	idn_member *m;
	size_t n;
	sdfs_ring *ring;
} view;

// server.c: the view, peers, calls, request helpers.
int sdfs_view_get(sdfs *s, view *v);
void sdfs_view_free(view *v);
// The name's replica set: addresses in ring order, primary first.
size_t sdfs_view_replicas(const view *v, const char *name,
    char addr[R][IDN_ADDR_MAX]);
bool sdfs_is_self(sdfs *s, const char *addr);
// Peers that recently timed out are tried last for reads and skipped as
// pull targets for BAD_PEER_MS.
bool sdfs_peer_bad(sdfs *s, const char *addr);
void sdfs_peer_mark(sdfs *s, const char *addr, int rv);
bool sdfs_still_alive(sdfs *s, const char *addr);
int sdfs_call(sdfs *s, const char *addr, const char *type, wire_wr *body,
    idn_duration tmo, wire_doc **doc, wire_env *env);
int sdfs_get_name(const wire_val *b, char *name);
// Stats name on addrs in parallel: each one's versions, newest first.
int sdfs_stat_many(sdfs *s, const char *name, const char *const *addrs,
    size_t n, idn_duration tmo, int *rvs, sdfs_vmeta **vers, size_t *nvers);

// replica.c
int sdfs_replica_register(sdfs *s);
rtx *sdfs_rtx_take(sdfs *s, const char *name, uint64_t ver);
void sdfs_rtx_free(rtx *t);
int sdfs_rep_begin(sdfs *s, const char *name, uint64_t ver);
int sdfs_rep_chunk(sdfs *s, const char *name, uint64_t ver, uint64_t off,
    const uint8_t *data, size_t len, const uint8_t *csum);
int sdfs_rep_commit(sdfs *s, const char *name, const sdfs_vmeta *m);
int sdfs_pull_now(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc);
// Queues a pull for the puller thread; resolve: this node holds the
// version with other bytes than src (sdfs_resolve instead of a pull).
void sdfs_pull_enqueue(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc, bool resolve);
// Settles two copies of (name, ver) with different bytes, this node's and
// src's: the one put first (sdfs_put_first) keeps ver everywhere; if that
// is src's, this node keeps its own bytes under a fresh version number
// before it takes src's copy of ver. Nothing is dropped.
int sdfs_resolve(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc);
void sdfs_repair(sdfs *s, const char *name, uint64_t ver);
// Drops version ver of name if it holds these bytes (sum), and refuses
// them under ver from then on (a later commit or pull drops them again):
// a put whose number turned out to be another put's, or that failed,
// withdraws its copies.
int sdfs_rep_unput(sdfs *s, const char *name, uint64_t ver,
    const uint8_t sum[IDN_SDFS_SUM_BYTES]);
int sdfs_local_read(sdfs *s, const char *name, uint64_t ver, uint32_t idx,
    uint8_t *buf, size_t *len, uint8_t csum[SDFS_CSUM_BYTES]);

// gather.c: what the cluster knows of a name: each asked node's versions.
typedef struct sdfs_gather {
	size_t n;
	idn_member *who;     // the nodes asked
	bool *replica;       // in the name's replica set
	int *rvs;
	sdfs_vmeta **vers;
	size_t *nvers;
} sdfs_gather;
// Stats name on its replica set, or on every live node when all_nodes or
// when no replica has it (a file can sit outside its set after churn).
int sdfs_gather_versions(sdfs *s, const char *name, bool all_nodes,
    sdfs_gather *g);
// The newest version seen (of want, when not 0), or NULL.
const sdfs_vmeta *sdfs_gather_newest(const sdfs_gather *g, uint64_t want);
void sdfs_gather_free(sdfs_gather *g);

// version.c: a fresh version number of name from its primary (IDN_EBUSY:
// try again shortly).
int sdfs_alloc_version(sdfs *s, const char *name, uint64_t *ver);
// The name's write set: the replica set with members that are suspected
// or timed out lately passed over while enough others are left.
size_t sdfs_write_set(sdfs *s, const view *v, const char *name,
    char addr[R][IDN_ADDR_MAX]);

// version.c, put.c, get.c, list.c: each registers its routes (sdfs.c
// calls them).
int sdfs_version_register(sdfs *s);
int sdfs_put_register(sdfs *s);
int sdfs_get_register(sdfs *s);
int sdfs_list_register(sdfs *s);
void sdfs_sess_free(put_sess *ps);

// repair.c: the threads sdfs_start starts.
void *sdfs_ae_thread(void *arg);
void *sdfs_pull_thread(void *arg);

#endif
