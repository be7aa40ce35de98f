# SPDX-License-Identifier: MIT
"""The C API of libidunno as ctypes sees it: the library, its structures
and the prototypes of the functions the binding calls. Mirrors
include/idunno/*.h; nothing here is public."""
import ctypes
import os

from ctypes import (POINTER, Structure, c_bool, c_char, c_char_p, c_double,
                    c_int, c_int32, c_size_t, c_uint8, c_uint32, c_uint64,
                    c_void_p)

# enum idn_err, in the order of IDN_ERRORS in include/idunno/base.h (the
# binding's test checks that they agree).
ERROR_NAMES = ("OK", "ENOMEM", "EINVAL", "ENOENT", "EEXIST", "EBUSY",
               "ETIMEDOUT", "ECLOSED", "EPROTO", "EAUTH", "ECORRUPT",
               "ESTALE", "EUNAVAIL", "ENOTLEADER", "EMODEL", "EDB", "ENET",
               "ESYS", "ETOOBIG", "EPERM")

KEY_BYTES = 32
ID_MAX = 96
ADDR_MAX = 64
ROLE_MAX = 16
SUM_BYTES = 32


class Member(Structure):
    _fields_ = [("id", c_char * ID_MAX), ("addr", c_char * ADDR_MAX),
                ("role", c_char * ROLE_MAX), ("state", c_int),
                ("incarnation", c_uint64), ("since_ms", c_uint64)]


class Event(Structure):
    # json and text: a stats snapshot's (kind 1, when asked for).
    _fields_ = [("kind", c_int), ("event", c_int), ("member", Member),
                ("json", c_char_p), ("text", c_char_p)]


class NodeStats(Structure):
    _fields_ = [("id", c_char * ID_MAX), ("uptime_ms", c_uint64),
                ("msgs_in", c_uint64), ("msgs_out", c_uint64),
                ("bytes_in", c_uint64), ("bytes_out", c_uint64)]


class SdfsVersion(Structure):
    _fields_ = [("version", c_uint64), ("size_bytes", c_uint64),
                ("mtime_ms", c_uint64), ("sum", c_uint8 * SUM_BYTES)]


class SdfsHolder(Structure):
    _fields_ = [("id", c_char * ID_MAX), ("addr", c_char * ADDR_MAX),
                ("newest", c_uint64), ("replica", c_bool)]


class SdfsInfo(Structure):
    _fields_ = [("name", c_char_p), ("newest", c_uint64),
                ("nholders", c_size_t), ("holders", POINTER(SdfsHolder)),
                ("nversions", c_size_t), ("versions", POINTER(SdfsVersion)),
                ("replicas_wanted", c_int), ("replicas_have", c_int),
                ("under_replicated", c_bool)]


class SdfsEntry(Structure):
    _fields_ = [("name", c_char_p), ("newest", c_uint64),
                ("size_bytes", c_uint64), ("nversions", c_uint32),
                ("deleted", c_bool)]


class InferSpec(Structure):
    _fields_ = [("size", c_uint32), ("job", c_char_p), ("model", c_char_p),
                ("queries", c_char_p), ("weights", c_char_p),
                ("batch", c_uint32), ("rate", c_double),
                ("limit", c_uint64)]


class TrainSpec(Structure):
    _fields_ = [("size", c_uint32), ("job", c_char_p), ("model", c_char_p),
                ("data", c_char_p), ("epochs", c_uint32),
                ("batch", c_uint32), ("lr", c_double),
                ("optimizer", c_int), ("schedule", c_int),
                ("limit", c_uint64), ("workers", c_uint32),
                ("momentum", c_double), ("weight_decay", c_double),
                ("from_", c_int), ("checkpoint_s", c_uint32),
                ("sync_every", c_uint32), ("augment", c_uint32),
                ("crop_pad", c_uint32)]


# idn_dataset_put_fn
DatasetPutFn = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_void_p,
                                c_size_t)
# idn_progress_fn
ProgressFn = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_uint64)

_P = POINTER
_ERRMSG = _P(c_void_p)  # char **errmsg: read, then idn_free()
# name: (restype, argtypes). Every int-returning function returns an
# idn_err code.
PROTOTYPES = {
    # base.h
    "idn_strerror": (c_char_p, [c_int]),
    "idn_free": (None, [c_void_p]),
    "idn_clock_ms": (c_uint64, []),
    "idn_wall_ms": (c_uint64, []),
    # client.h
    "idn_key_load": (c_int, [c_char_p, c_uint8 * KEY_BYTES]),
    "idn_key_create": (c_int, [c_char_p, c_uint8 * KEY_BYTES]),
    "idn_client_open": (c_int, [c_char_p, c_uint8 * KEY_BYTES,
                                _P(c_void_p)]),
    "idn_client_close": (None, [c_void_p]),
    "idn_client_set_timeout": (None, [c_void_p, c_int32]),
    "idn_client_grep": (c_int, [c_void_p, c_char_p, c_char_p, c_bool,
                                _P(c_void_p), _P(c_size_t), _P(c_uint64)]),
    "idn_client_node_stats": (c_int, [c_void_p, c_char_p, _P(NodeStats)]),
    # membership.h
    "idn_member_state_name": (c_char_p, [c_int]),
    "idn_member_event_name": (c_char_p, [c_int]),
    "idn_client_members": (c_int, [c_void_p, _P(c_void_p), _P(c_size_t)]),
    "idn_events_open": (c_int, [c_void_p, _P(c_void_p)]),
    "idn_events_next": (c_int, [c_void_p, c_int32, _P(Event)]),
    "idn_events_close": (None, [c_void_p]),
    # sdfs.h
    "idn_sdfs_name_error": (c_char_p, [c_char_p]),
    "idn_sdfs_put_file": (c_int, [c_void_p, c_char_p, c_char_p,
                                  _P(c_uint64)]),
    "idn_sdfs_put_buf": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t,
                                 _P(c_uint64)]),
    "idn_sdfs_get_file": (c_int, [c_void_p, c_char_p, c_uint64, c_char_p,
                                  _P(c_uint64)]),
    "idn_sdfs_get_buf": (c_int, [c_void_p, c_char_p, c_uint64,
                                 _P(c_void_p), _P(c_size_t), _P(c_uint64)]),
    "idn_sdfs_delete": (c_int, [c_void_p, c_char_p]),
    "idn_sdfs_ls": (c_int, [c_void_p, c_char_p, _P(c_void_p)]),
    "idn_sdfs_versions": (c_int, [c_void_p, c_char_p, c_size_t,
                                  _P(c_void_p), _P(c_size_t)]),
    "idn_sdfs_store": (c_int, [c_void_p, _P(c_void_p), _P(c_size_t)]),
    "idn_sdfs_ls_prefix": (c_int, [c_void_p, c_char_p, _P(c_void_p),
                                   _P(c_size_t)]),
    "idn_sdfs_sum_hex": (None, [_P(c_uint8), c_char * (2 * SUM_BYTES + 1)]),
    # catalog.h
    "idn_model_store": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t,
                                c_void_p, c_size_t, _ERRMSG]),
    "idn_dataset_shards": (c_int, [c_char_p, c_char_p, c_char_p, c_uint32,
                                   DatasetPutFn, c_void_p]),
    "idn_dataset_import_mnist": (c_int, [c_void_p, c_char_p, c_char_p,
                                         c_uint32]),
    "idn_dataset_import_mnist_progress": (c_int, [c_void_p, c_char_p,
                                                  c_char_p, c_uint32,
                                                  ProgressFn, c_void_p]),
    # sched.h
    "idn_phase_name": (c_char_p, [c_int]),
    "idn_job_state_name": (c_char_p, [c_int]),
    "idn_infer_spec_init": (None, [_P(InferSpec)]),
    "idn_train_spec_init": (None, [_P(TrainSpec)]),
    "idn_phase_start": (c_int, [c_void_p, c_int, _ERRMSG]),
    "idn_phase_stop": (c_int, [c_void_p, c_int, _ERRMSG]),
    "idn_job_add_infer": (c_int, [c_void_p, _P(InferSpec), _ERRMSG]),
    "idn_job_add_train": (c_int, [c_void_p, _P(TrainSpec), _ERRMSG]),
    "idn_job_remove": (c_int, [c_void_p, c_char_p, _ERRMSG]),
    "idn_sched_stats": (c_int, [c_void_p, c_char_p, _P(c_void_p)]),
    "idn_sched_jobs": (c_int, [c_void_p, _P(c_void_p)]),
    "idn_sched_assign": (c_int, [c_void_p, _P(c_void_p)]),
    "idn_sched_table": (c_int, [c_void_p, c_char_p, c_char_p,
                                _P(c_void_p)]),
    "idn_job_wait": (c_int, [c_void_p, c_char_p, c_int32, _P(c_int)]),
    "idn_job_result": (c_int, [c_void_p, c_char_p, c_char_p]),
}


def _candidates():
    """Where to look for the shared library, first match wins:
    $IDUNNO_LIB; the library the package was built or installed with
    (relative to the package, so a staged or moved install works, then by
    its absolute path); the dynamic linker's search path."""
    env = os.environ.get("IDUNNO_LIB")
    if env:
        return [env]
    found = []
    try:
        from . import _config
    except ImportError:
        _config = None
    if _config is not None:
        parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        rel = os.path.relpath(_config.LIBDIR, _config.PYDIR)
        found.append(os.path.normpath(os.path.join(parent, rel,
                                                   _config.LIBNAME)))
        found.append(os.path.join(_config.LIBDIR, _config.LIBNAME))
    found.append("libidunno.so.0")
    return found


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + ": no such file")
            continue
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            tried.append(str(e))
    else:
        raise ImportError("idunno: cannot load libidunno (set IDUNNO_LIB "
                          "to its path): " + "; ".join(tried))
    missing = []
    for name, (res, args) in PROTOTYPES.items():
        f = getattr(lib, name, None)
        if f is None:
            missing.append(name)
            continue
        f.restype = res
        f.argtypes = args
    return lib, frozenset(missing), lib._name


lib, missing, path = _load()
