# SPDX-License-Identifier: MIT
"""idunno: a thin ctypes binding over libidunno's public C API.

    import idunno
    with idunno.Client("127.0.0.1:7000", key_file="cluster.key") as c:
        c.put_bytes("notes/a.txt", b"hello")
        print(c.get_bytes("notes/a.txt"), c.members())

Every call blocks like its C function (the GIL is released meanwhile, so
threads may share a client). A failure raises IdunnoError, whose `code` is
the idn_err number, `name` its symbol ("ENOENT") and `strerror` the text
of idn_strerror(); `detail` holds the reason a coordinator gave, if any.
JSON documents (stats, jobs, assign) come back parsed into dicts.
"""
import ctypes
import json
import os

from ctypes import byref, c_bool, c_char_p, c_int, c_size_t, c_uint64, \
    c_void_p

from . import _capi
from ._capi import lib as _lib

__all__ = ["Client", "IdunnoError", "strerror", "key_load", "key_create",
           "sdfs_name_error", "LIBRARY"]

# The shared library the package loaded.
LIBRARY = _capi.path

PHASES = {"idle": 0, "train": 1, "infer": 2}
OPTIMIZERS = {"sgd": 0, "adam": 1}
SCHEDULES = {"const": 0, "constant": 0, "step": 1, "cosine": 2}
TRAIN_FROM = {"model": 0, "weights": 1}
# idn_model_train_opts.augment: IDN_MODEL_AUG_FLIP.
AUG_FLIP = 1

# Error codes (enum idn_err) as module constants, idunno.ENOENT == 3, in
# the order of _capi.ERROR_NAMES (the binding's test checks both against
# include/idunno/base.h).
(OK, ENOMEM, EINVAL, ENOENT, EEXIST, EBUSY, ETIMEDOUT, ECLOSED, EPROTO, EAUTH,
 ECORRUPT, ESTALE, EUNAVAIL, ENOTLEADER, EMODEL, EDB, ENET, ESYS, ETOOBIG,
 EPERM) = range(len(_capi.ERROR_NAMES))


def strerror(code):
    """idn_strerror(code): the library's English message for a code."""
    return _lib.idn_strerror(int(code)).decode()


class IdunnoError(Exception):
    """A libidunno call failed. code: the idn_err number; name: its
    symbol; strerror: idn_strerror(code); op: what was being done;
    detail: the reason a coordinator or the model loader gave, or None."""

    def __init__(self, code, op=None, detail=None):
        self.code = int(code)
        self.name = (_capi.ERROR_NAMES[self.code]
                     if 0 <= self.code < len(_capi.ERROR_NAMES) else
                     str(self.code))
        self.strerror = strerror(self.code)
        self.op = op
        self.detail = detail
        msg = self.strerror
        if detail:
            msg += ": " + detail
        if op:
            msg = op + ": " + msg
        super().__init__(msg)


def _fn(name):
    if name in _capi.missing:
        raise IdunnoError(EINVAL, name, "not in " + LIBRARY +
                          " (an older libidunno)")
    return getattr(_lib, name)


def _check(rv, op, detail=None):
    if rv != 0:
        raise IdunnoError(rv, op, detail)


def _b(s):
    """A str, bytes or path as the bytes C expects; None stays NULL."""
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)


def _s(raw):
    return raw.decode("utf-8", "replace")


def _take_string(ptr):
    """Reads a NUL-terminated string the library returned, then frees it."""
    if not ptr:
        return None
    try:
        return _s(ctypes.string_at(ptr))
    finally:
        _lib.idn_free(ptr)


def _call_msg(name, op, *args):
    """Calls a function whose last argument is char **errmsg; raises with
    the message as detail."""
    err = c_void_p()
    rv = _fn(name)(*args, byref(err))
    detail = _take_string(err.value)
    _check(rv, op, detail)


def _key_buf(key):
    if len(key) != _capi.KEY_BYTES:
        raise IdunnoError(EINVAL, "key", "a key is %d bytes" %
                          _capi.KEY_BYTES)
    return (ctypes.c_uint8 * _capi.KEY_BYTES)(*key)


def key_load(path):
    """Reads a key file (64 hex digits) and returns its 32 bytes."""
    buf = (ctypes.c_uint8 * _capi.KEY_BYTES)()
    _check(_lib.idn_key_load(_b(path), buf), "key " + os.fsdecode(path))
    return bytes(buf)


def key_create(path):
    """Writes a new random key file (mode 0600) and returns its bytes."""
    buf = (ctypes.c_uint8 * _capi.KEY_BYTES)()
    _check(_lib.idn_key_create(_b(path), buf), "key " + os.fsdecode(path))
    return bytes(buf)


def sdfs_name_error(name):
    """None if name is a valid SDFS name, else the reason."""
    r = _lib.idn_sdfs_name_error(_b(name))
    return None if r is None else _s(r)


def _member(m):
    return {"id": _s(m.id), "addr": _s(m.addr), "role": _s(m.role),
            "state": _s(_lib.idn_member_state_name(m.state)),
            "incarnation": m.incarnation, "since_ms": m.since_ms}


def _version(v):
    hexsum = (ctypes.c_char * (2 * _capi.SUM_BYTES + 1))()
    _lib.idn_sdfs_sum_hex(v.sum, hexsum)
    return {"version": v.version, "size": v.size_bytes,
            "mtime_ms": v.mtime_ms, "sum": _s(hexsum.value)}


def _entry(e):
    return {"name": _s(e.name), "newest": e.newest, "size": e.size_bytes,
            "versions": e.nversions, "deleted": e.deleted}


def _array(ptr, count, struct, convert):
    """Converts count structs at ptr, then frees the block."""
    try:
        arr = ctypes.cast(ptr, ctypes.POINTER(struct))
        return [convert(arr[i]) for i in range(count)]
    finally:
        _lib.idn_free(ptr)


def _enum(table, value, what):
    if isinstance(value, int):
        return value
    try:
        return table[value]
    except KeyError:
        raise IdunnoError(EINVAL, what, "%r is not one of %s" %
                          (value, ", ".join(table))) from None


def _spec(cls, name, what="add job"):
    """A job spec set up by the library's NAME_init; refused when the
    library's struct is not the size this binding knows."""
    s = cls()
    _fn(name + "_init")(byref(s))
    if s.size != ctypes.sizeof(s):
        raise IdunnoError(EINVAL, what, "%s is %d bytes in %s, %d here" %
                          (name, s.size, LIBRARY, ctypes.sizeof(s)))
    return s


class _Handle:
    """A library handle in self._h, freed by the C call in _close_fn: by
    close(), at the end of a with block, or when dropped."""

    _close_fn = None

    def close(self):
        if getattr(self, "_h", None):
            self._close_fn(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A handle dropped without close() must not leak its sockets (at
        # interpreter exit the module may be half gone: nothing to do).
        try:
            self.close()
        except Exception:
            pass


class Client(_Handle):
    """A handle that talks to the cluster through the node at addr
    ("host:port"), signed with the cluster key (key bytes or key_file).
    It does not join the cluster. Close it, or use it as a context
    manager."""

    _close_fn = staticmethod(lambda h: _lib.idn_client_close(h))

    def __init__(self, addr, key=None, key_file=None, timeout_ms=None):
        if (key is None) == (key_file is None):
            raise IdunnoError(EINVAL, "client", "give key or key_file")
        if key is None:
            key = key_load(key_file)
        h = c_void_p()
        _check(_lib.idn_client_open(_b(addr), _key_buf(key), byref(h)),
               "client " + str(addr))
        self._h = h
        self.addr = addr
        if timeout_ms is not None:
            self.set_timeout(timeout_ms)

    @property
    def handle(self):
        if not self._h:
            raise IdunnoError(ECLOSED, "client")
        return self._h

    def set_timeout(self, ms):
        """Per-request timeout in ms (the library's default is 5000)."""
        _lib.idn_client_set_timeout(self.handle, int(ms))

    # Cluster

    def members(self):
        """The membership as the node sees it: a list of dicts (id, addr,
        role, state "alive"/"suspect"/"failed"/"left", incarnation,
        since_ms)."""
        out, n = c_void_p(), c_size_t()
        _check(_lib.idn_client_members(self.handle, byref(out), byref(n)),
               "members")
        return _array(out, n.value, _capi.Member, _member)

    def events(self):
        """Subscribes to the node's membership events: an Events object
        (events published before it connects are not seen)."""
        return Events(self)

    def node_stats(self, addr=None):
        """A node's traffic counters (addr None: the client's node)."""
        s = _capi.NodeStats()
        _check(_lib.idn_client_node_stats(self.handle, _b(addr), byref(s)),
               "node stats")
        return {"id": _s(s.id), "uptime_ms": s.uptime_ms,
                "msgs_in": s.msgs_in, "msgs_out": s.msgs_out,
                "bytes_in": s.bytes_in, "bytes_out": s.bytes_out}

    def grep(self, pattern, addr=None, regex=False):
        """Greps the log of the node at addr (None: the client's node):
        (number of matching lines, the first of them)."""
        lines, n, count = c_void_p(), c_size_t(), c_uint64()
        _check(_lib.idn_client_grep(self.handle, _b(addr), _b(pattern),
                                    c_bool(regex), byref(lines), byref(n),
                                    byref(count)), "grep")
        try:
            arr = ctypes.cast(lines, ctypes.POINTER(c_char_p))
            return count.value, [_s(arr[i]) for i in range(n.value)]
        finally:
            _lib.idn_free(lines)

    # SDFS

    def put(self, path, name):
        """Stores the local file at path under name as a new version;
        returns the version number."""
        v = c_uint64()
        _check(_lib.idn_sdfs_put_file(self.handle, _b(path), _b(name),
                                      byref(v)), "put " + str(name))
        return v.value

    def put_bytes(self, name, data):
        """Stores data (bytes) under name; returns the version."""
        v = c_uint64()
        data = bytes(data)
        _check(_lib.idn_sdfs_put_buf(self.handle, _b(name), data, len(data),
                                     byref(v)), "put " + str(name))
        return v.value

    def get(self, name, path, version=0):
        """Writes a version of name (0: the newest) to the local path;
        returns the version read."""
        got = c_uint64()
        _check(_lib.idn_sdfs_get_file(self.handle, _b(name), version,
                                      _b(path), byref(got)),
               "get " + str(name))
        return got.value

    def get_bytes(self, name, version=0):
        """A version of name (0: the newest) as bytes."""
        data, n, got = c_void_p(), c_size_t(), c_uint64()
        _check(_lib.idn_sdfs_get_buf(self.handle, _b(name), version,
                                     byref(data), byref(n), byref(got)),
               "get " + str(name))
        try:
            return ctypes.string_at(data, n.value)
        finally:
            _lib.idn_free(data)

    def delete(self, name):
        """Deletes name (a tombstone version)."""
        _check(_lib.idn_sdfs_delete(self.handle, _b(name)),
               "delete " + str(name))

    def ls(self, name):
        """Who holds name and its versions: a dict (name, newest, holders,
        versions newest first, replicas_wanted, replicas_have,
        under_replicated)."""
        out = c_void_p()
        _check(_lib.idn_sdfs_ls(self.handle, _b(name), byref(out)),
               "ls " + str(name))
        try:
            i = ctypes.cast(out, ctypes.POINTER(_capi.SdfsInfo)).contents
            return {
                "name": _s(i.name), "newest": i.newest,
                "holders": [{"id": _s(h.id), "addr": _s(h.addr),
                             "newest": h.newest, "replica": h.replica}
                            for h in i.holders[:i.nholders]],
                "versions": [_version(v) for v in i.versions[:i.nversions]],
                "replicas_wanted": i.replicas_wanted,
                "replicas_have": i.replicas_have,
                "under_replicated": i.under_replicated}
        finally:
            _lib.idn_free(out)

    def versions(self, name, limit=0):
        """The versions of name, newest first (at most limit; 0: all
        kept)."""
        out, n = c_void_p(), c_size_t()
        _check(_lib.idn_sdfs_versions(self.handle, _b(name), limit,
                                      byref(out),
                                      byref(n)), "versions " + str(name))
        return _array(out, n.value, _capi.SdfsVersion, _version)

    def ls_prefix(self, prefix=""):
        """The cluster's live files whose names start with prefix, sorted:
        a list of dicts (name, newest, size, versions, deleted)."""
        out, n = c_void_p(), c_size_t()
        _check(_lib.idn_sdfs_ls_prefix(self.handle, _b(prefix), byref(out),
                                       byref(n)), "ls-prefix")
        return _array(out, n.value, _capi.SdfsEntry, _entry)

    def store(self):
        """What the client's node holds, like ls_prefix."""
        out, n = c_void_p(), c_size_t()
        _check(_lib.idn_sdfs_store(self.handle, byref(out), byref(n)),
               "store")
        return _array(out, n.value, _capi.SdfsEntry, _entry)

    # Models and datasets

    def model_store(self, name, desc, model=None):
        """Validates a model (descriptor text, model bytes or None for the
        sim backend) and stores it as models/NAME/..."""
        desc = _b(desc) if isinstance(desc, str) else bytes(desc)
        model = None if model is None else bytes(model)
        _call_msg("idn_model_store", "model store " + str(name), self.handle,
                  _b(name), desc, len(desc), model,
                  0 if model is None else len(model))

    def dataset_import_mnist(self, directory, prefix, shard_size=1000,
                             progress=None):
        """Stores a directory in MNIST's layout as PREFIX/train and
        PREFIX/test (the query set). progress(done, total), if given, is
        called after each stored shard with the images stored of both
        sets' images; an exception it raises is raised once the import
        ends."""
        failure = []

        def report(arg, done, total):
            try:
                progress(done, total)
            except BaseException as e:  # must not unwind through C
                failure.append(e)

        cb = _capi.ProgressFn(report) if progress else _capi.ProgressFn()
        rv = _fn("idn_dataset_import_mnist_progress")(
            self.handle, _b(directory), _b(prefix), shard_size, cb, None)
        if failure:
            raise failure[0]
        _check(rv, "dataset import " + str(prefix))

    def dataset_put_idx(self, images_gz, labels_gz, prefix, shard_size=1000):
        """Stores one gzipped IDX image file and its labels as shards
        PREFIX/NNNNNN and PREFIX/manifest."""
        failure = []

        def put(arg, name, data, size):
            try:
                return _lib.idn_sdfs_put_buf(self.handle, name, data, size,
                                             None)
            except BaseException as e:  # must not unwind through C
                failure.append(e)
                return ECLOSED

        cb = _capi.DatasetPutFn(put)
        rv = _fn("idn_dataset_shards")(_b(images_gz), _b(labels_gz),
                                       _b(prefix), shard_size, cb, None)
        if failure:
            raise failure[0]
        _check(rv, "dataset " + str(prefix))

    # Phases and jobs

    def phase_start(self, phase):
        """Starts the "train" or "infer" phase."""
        _call_msg("idn_phase_start", "phase start", self.handle,
                  _enum(PHASES, phase, "phase"))

    def phase_stop(self, phase):
        """Stops the "train" or "infer" phase."""
        _call_msg("idn_phase_stop", "phase stop", self.handle,
                  _enum(PHASES, phase, "phase"))

    def add_infer_job(self, job, model, queries, batch, rate, limit=0,
                      weights=None):
        """Adds an inference job: model's weights (default: trained ones
        when present) over the SDFS query set `queries`, batch queries a
        batch, arriving at rate queries/s, the first `limit` (0: all)."""
        s = _spec(_capi.InferSpec, "idn_infer_spec")
        s.job, s.model, s.queries = _b(job), _b(model), _b(queries)
        s.weights = _b(weights)
        s.batch, s.rate, s.limit = batch, rate, limit
        _call_msg("idn_job_add_infer", "add job " + str(job), self.handle,
                  byref(s))

    def add_train_job(self, job, model, data=None, epochs=None, batch=None,
                      lr=None, optimizer=None, schedule=None, limit=0,
                      workers=None, momentum=None, weight_decay=None,
                      from_=None, checkpoint_s=None, sync_every=None,
                      flip=False, crop_pad=0):
        """Adds a training job for model on the dataset root `data`
        (default datasets/fashion-mnist); None keeps the C defaults.
        optimizer: "sgd" or "adam"; schedule: "constant", "step",
        "cosine"; workers: ranks training data-parallel (batch is the
        global batch); from_: "model" (model.pt) or "weights" (the
        model's trained weights); checkpoint_s: seconds between
        checkpoints; sync_every: steps between the ranks' syncs; flip:
        mirror training images at random; crop_pad: shift them by up to
        this many pixels."""
        s = _spec(_capi.TrainSpec, "idn_train_spec")
        s.job, s.model = _b(job), _b(model)
        if data is not None:
            s.data = _b(data)
        if epochs is not None:
            s.epochs = epochs
        if batch is not None:
            s.batch = batch
        if lr is not None:
            s.lr = lr
        if optimizer is not None:
            s.optimizer = _enum(OPTIMIZERS, optimizer, "optimizer")
        if schedule is not None:
            s.schedule = _enum(SCHEDULES, schedule, "schedule")
        s.limit = limit
        for k, v in (("workers", workers), ("momentum", momentum),
                     ("weight_decay", weight_decay),
                     ("checkpoint_s", checkpoint_s),
                     ("sync_every", sync_every)):
            if v is not None:
                setattr(s, k, v)
        if from_ is not None:
            s.from_ = _enum(TRAIN_FROM, from_, "from_")
        s.augment = AUG_FLIP if flip else 0
        s.crop_pad = crop_pad
        _call_msg("idn_job_add_train", "add job " + str(job), self.handle,
                  byref(s))

    def remove_job(self, job):
        """Removes a job."""
        _call_msg("idn_job_remove", "remove job " + str(job), self.handle,
                  _b(job))

    def wait(self, job, timeout_s=None):
        """Waits until the job is done and returns "done". Raises
        IdunnoError: ETIMEDOUT after timeout_s (None: forever), EINVAL if
        the job failed or was removed, ENOENT if there is no such job."""
        ms = (0 if timeout_s is None else
              min(2**31 - 1, max(1, int(timeout_s * 1000))))
        state = c_int(-1)
        rv = _fn("idn_job_wait")(self.handle, _b(job), ms, byref(state))
        name = (_s(_lib.idn_job_state_name(state.value))
                if state.value >= 0 else None)
        _check(rv, "wait " + str(job), name and "job is " + name)
        return name

    def _json(self, name, op, *args):
        out = c_void_p()
        _check(_fn(name)(self.handle, *args, byref(out)), op)
        return json.loads(_take_string(out.value))

    def stats(self, job=None):
        """The statistics document (`idunno stats --json`) as a dict."""
        return self._json("idn_sched_stats", "stats", _b(job))

    def jobs(self):
        """The jobs document (`idunno jobs --json`) as a dict."""
        return self._json("idn_sched_jobs", "jobs")

    def assign(self):
        """The worker assignment document (`idunno assign --json`)."""
        return self._json("idn_sched_assign", "assign")

    def table(self, what, job=None):
        """"stats", "jobs" or "assign" as the CLI's readable table."""
        out = c_void_p()
        _check(_fn("idn_sched_table")(self.handle, _b(what), _b(job),
                                      byref(out)), str(what))
        return _take_string(out.value)

    def result(self, job, path):
        """Writes the job's output (query,predicted,score,label lines in
        query order) to the local path."""
        _check(_fn("idn_job_result")(self.handle, _b(job), _b(path)),
               "result " + str(job))

    def result_lines(self, job):
        """The job's output as a list of lines."""
        return _s(self.get_bytes("results/%s/output" % job)).splitlines()


class Events(_Handle):
    """A subscription to a node's membership events (Client.events()).
    next() returns one event as a dict (event "join"/"suspect"/"alive"/
    "fail"/"leave", member: as in Client.members()) or None when none came
    in time. Close it, or use it as a context manager; the client must
    outlive it."""

    _close_fn = staticmethod(lambda h: _lib.idn_events_close(h))

    def __init__(self, client):
        h = c_void_p()
        _check(_lib.idn_events_open(client.handle, byref(h)), "events")
        self._h = h
        self.client = client

    def next(self, timeout_s=1.0):
        if not self._h:
            raise IdunnoError(ECLOSED, "events")
        ev = _capi.Event()
        rv = _lib.idn_events_next(self._h, max(0, int(timeout_s * 1000)),
                                  byref(ev))
        if rv == ETIMEDOUT:
            return None
        _check(rv, "events")
        return {"event": _s(_lib.idn_member_event_name(ev.event)),
                "member": _member(ev.member)}

