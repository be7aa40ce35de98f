# SPDX-License-Identifier: MIT
"""The Python binding against a real local cluster (`idunno cluster up`
into a temp root, always torn down): SDFS, members, datasets, and an
inference and a training job on the sim backend, end to end, membership
events of a killed worker; errors as IdunnoError with the library's
text."""
import gzip
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import idunno

BIN = os.environ.get("IDUNNO_BIN_DIR", "build/tools")
SRC = os.environ.get("IDUNNO_SOURCE_DIR", ".")
sys.path.insert(0, os.path.join(SRC, "tests"))
import reaper  # noqa: E402
NODES = 4
QUERIES = 60          # images in the generated query set
TRAIN = 96            # and in its training set
SIM = ("name = python sim\nbackend = sim\ninput = 1x28x28\nclasses = 10\n"
       "service_ms = 5\n")


def tool(root, *args, check=True):
    r = subprocess.run([os.path.join(BIN, "idunno"), "--root", root] +
                       list(args), capture_output=True, text=True,
                       timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("idunno %s: %s%s" % (" ".join(args), r.stdout,
                                                  r.stderr))
    return r


def poll(what, cond, timeout_s=30):
    """Polls cond() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class Cluster:
    def __init__(self, root):
        self.root = root
        self.key_file = os.path.join(root, "cluster.key")
        st = json.loads(tool(root, "cluster", "status", "--json").stdout)
        self.nodes = {n["name"]: n for n in st["nodes"]}

    def client(self, name="worker1", **kw):
        return idunno.Client(self.nodes[name]["addr"],
                             key_file=self.key_file, **kw)


@pytest.fixture(scope="module")
def cluster():
    root = tempfile.mkdtemp(prefix="idunno-py-")
    reaper.folder(root)
    reaper.processes_under(root)
    cl = None
    try:
        tool(root, "cluster", "up", "-n", str(NODES))
        cl = Cluster(root)
        with cl.client(timeout_ms=2000) as c:
            poll("%d alive members" % NODES, lambda: sum(
                m["state"] == "alive" for m in c.members()) == NODES)
        yield cl
    finally:
        tool(root, "cluster", "down", check=False)
        # Whatever `down` missed must not outlive the test.
        for n in (cl.nodes.values() if cl else []):
            try:
                with open("/proc/%d/cmdline" % n["pid"], "rb") as f:
                    if b"idunno-" in f.read():
                        os.kill(n["pid"], signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def client(cluster):
    with cluster.client(timeout_ms=30000) as c:
        yield c


def idx_pair(directory, name, n, seed):
    """Writes a gzipped IDX image file of n 28x28 images and its labels."""
    images = bytes((i * 7 + seed * 13 + (i // 784) * 3) % 256
                   for i in range(n * 784))
    labels = bytes((i + seed) % 10 for i in range(n))
    img = os.path.join(directory, name + "-images-idx3-ubyte.gz")
    lab = os.path.join(directory, name + "-labels-idx1-ubyte.gz")
    with gzip.open(img, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images)
    with gzip.open(lab, "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels)
    return img, lab


def test_binding_matches_library():
    # Every C function the binding declares is in the library it loaded,
    # which is the build's (the test environment sets no IDUNNO_LIB).
    assert idunno._capi.missing == frozenset()
    build = os.environ.get("IDUNNO_BUILD_DIR")
    if build:
        assert os.path.realpath(idunno.LIBRARY).startswith(
            os.path.realpath(build) + os.sep)


def test_error_codes_match_base_h():
    with open(os.path.join(SRC, "include/idunno/base.h")) as f:
        pairs = re.findall(r'X\((\w+), "([^"]*)"\)', f.read())
    assert [p[0] for p in pairs] == list(idunno._capi.ERROR_NAMES)
    for code, (name, text) in enumerate(pairs):
        assert getattr(idunno, name) == code
        assert idunno.strerror(code) == text


def test_errors_outside_a_cluster(tmp_path):
    with pytest.raises(idunno.IdunnoError) as e:
        idunno.key_load(tmp_path / "missing.key")
    assert e.value.code == idunno.ENOENT and e.value.name == "ENOENT"
    assert e.value.strerror == "no such file or version"
    assert "no such file or version" in str(e.value)
    key = idunno.key_create(tmp_path / "k")
    assert idunno.key_load(tmp_path / "k") == key and len(key) == 32
    assert idunno.sdfs_name_error("a/b") is None
    assert "absolute" in idunno.sdfs_name_error("/a")
    with pytest.raises(idunno.IdunnoError) as e:
        idunno.Client("not an address", key=key)
    assert e.value.code == idunno.EINVAL
    c = idunno.Client("127.0.0.1:1", key=key, timeout_ms=200)
    c.close()
    with pytest.raises(idunno.IdunnoError) as e:
        c.members()
    assert e.value.code == idunno.ECLOSED
    assert str(e.value) == "client: object closed"


def test_members(cluster, client):
    ms = client.members()
    assert len(ms) == NODES
    assert all(m["state"] == "alive" for m in ms)
    assert sorted(m["role"] for m in ms) == ["coord", "standby", "worker",
                                            "worker"]
    assert {m["addr"] for m in ms} == {n["addr"] for n in
                                       cluster.nodes.values()}
    st = client.node_stats()
    assert st["msgs_in"] > 0 and st["id"] in {m["id"] for m in ms}


def test_wrong_key_is_refused(cluster):
    with idunno.Client(cluster.nodes["worker1"]["addr"], key=bytes(32),
                       timeout_ms=500) as c:
        with pytest.raises(idunno.IdunnoError) as e:
            c.members()
    assert e.value.code in (idunno.EAUTH, idunno.ETIMEDOUT)


def test_sdfs(client, tmp_path):
    src = tmp_path / "in.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    src.write_bytes(data)
    v1 = client.put(src, "py/data.bin")
    assert v1 >= 1
    client.get("py/data.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    v2 = client.put_bytes("py/data.bin", b"second")
    assert v2 > v1
    assert client.get_bytes("py/data.bin") == b"second"
    assert client.get_bytes("py/data.bin", version=v1) == data

    info = client.ls("py/data.bin")
    assert info["name"] == "py/data.bin" and info["newest"] == v2
    assert [v["version"] for v in info["versions"]][:2] == [v2, v1]
    assert info["versions"][0]["size"] == len(b"second")
    assert len(info["versions"][0]["sum"]) == 64
    assert info["replicas_have"] == info["replicas_wanted"] == NODES
    assert not info["under_replicated"]
    assert len([h for h in info["holders"] if h["replica"]]) == NODES
    assert [v["version"] for v in client.versions("py/data.bin", 1)] == [v2]

    client.put_bytes("py/other", b"x")
    names = [e["name"] for e in client.ls_prefix("py/")]
    assert names == ["py/data.bin", "py/other"]
    assert any(e["name"] == "py/other" for e in client.store())

    client.delete("py/other")
    with pytest.raises(idunno.IdunnoError) as e:
        client.get_bytes("py/other")
    assert e.value.code == idunno.ENOENT
    assert str(e.value) == "get py/other: no such file or version"
    assert [e["name"] for e in client.ls_prefix("py/")] == ["py/data.bin"]
    with pytest.raises(idunno.IdunnoError) as e:
        client.put_bytes("/absolute", b"x")
    assert e.value.code == idunno.EINVAL


def test_threads_share_a_client(client):
    # Calls release the GIL and the C API allows concurrent calls on one
    # handle: four threads put and read back at once.
    errors = []

    def work(t):
        try:
            for i in range(5):
                name = "pythreads/%d-%d" % (t, i)
                data = os.urandom(1000 + t * 100 + i)
                client.put_bytes(name, data)
                assert client.get_bytes(name) == data
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert len(client.ls_prefix("pythreads/")) == 20


def test_inference_job(cluster, client, tmp_path):
    client.model_store("pysim", SIM)
    with pytest.raises(idunno.IdunnoError) as e:
        client.model_store("bad", "backend = nonsense\n")
    assert e.value.code == idunno.EINVAL and e.value.detail
    img, lab = idx_pair(tmp_path, "t10k", QUERIES, 1)
    client.dataset_put_idx(img, lab, "pydata/test", shard_size=25)
    manifest = client.get_bytes("pydata/test/manifest").decode()
    assert str(QUERIES) in manifest
    assert [e["name"] for e in client.ls_prefix("pydata/test/")] == [
        "pydata/test/000000", "pydata/test/000001", "pydata/test/000002",
        "pydata/test/manifest"]

    client.phase_start("infer")
    try:
        client.add_infer_job("pyjob", "pysim", "pydata/test", batch=8,
                             rate=300)
        with pytest.raises(idunno.IdunnoError) as e:
            client.add_infer_job("pyjob", "pysim", "pydata/test", batch=8,
                                 rate=300)
        assert e.value.code == idunno.EEXIST
        assert str(e.value) == ("add job pyjob: already exists: job 'pyjob' "
                                "already exists")
        with pytest.raises(idunno.IdunnoError) as e:
            client.add_infer_job("nomodel", "absent", "pydata/test",
                                 batch=8, rate=300)
        assert e.value.code == idunno.ENOENT
        assert str(e.value).startswith("add job nomodel: no such file or "
                                       "version: ")
        with pytest.raises(idunno.IdunnoError) as e:
            client.wait("no-such-job", timeout_s=5)
        assert e.value.code == idunno.ENOENT

        assert client.wait("pyjob", timeout_s=120) == "done"
        lines = client.result_lines("pyjob")
        assert len(lines) == QUERIES
        assert [int(line.split(",")[0]) for line in lines] == list(
            range(QUERIES))
        client.result("pyjob", tmp_path / "out.csv")
        assert (tmp_path / "out.csv").read_text().splitlines() == lines

        stats = client.stats("pyjob")
        (job,) = stats["jobs"]
        assert job["job"] == "pyjob" and job["state"] == "done"
        assert job["done"] == job["total"] == QUERIES
        lat = job["latency_ms"]
        assert 0 < lat["median"] <= lat["p99"]
        jobs = client.jobs()
        assert [j["job"] for j in jobs["jobs"]] == ["pyjob"]
        assert "assignments" in client.assign()
        assert "pyjob" in client.table("stats")
        client.remove_job("pyjob")
    finally:
        client.phase_stop("infer")


def test_dataset_import_progress(client, tmp_path):
    idx_pair(tmp_path, "train", 60, 4)
    idx_pair(tmp_path, "t10k", 20, 5)
    seen = []
    client.dataset_import_mnist(str(tmp_path), "pyimport", shard_size=20,
                                progress=lambda d, t: seen.append((d, t)))
    assert seen == [(20, 80), (40, 80), (60, 80), (80, 80)]
    assert "count = 20" in client.get_bytes(
        "pyimport/test/manifest").decode()
    with pytest.raises(idunno.IdunnoError) as e:
        client.dataset_import_mnist(str(tmp_path / "none"), "pyimport2")
    assert e.value.code == idunno.ENOENT


def test_training_job(client, tmp_path):
    for name, n, seed in (("train", TRAIN, 2), ("t10k", 32, 3)):
        img, lab = idx_pair(tmp_path, name, n, seed)
        client.dataset_put_idx(img, lab, "pytrain/" +
                               ("test" if name == "t10k" else "train"),
                               shard_size=50)
    client.model_store("pytrainsim", SIM)
    with pytest.raises(idunno.IdunnoError) as e:
        client.add_train_job("pytrain", "pytrainsim", data="pytrain")
    assert e.value.code in (idunno.EINVAL, idunno.EBUSY)  # no train phase
    with pytest.raises(idunno.IdunnoError) as e:
        client.phase_start("dinner")
    assert e.value.code == idunno.EINVAL
    client.phase_start("train")
    try:
        client.add_train_job("pytrain", "pytrainsim", data="pytrain",
                             epochs=2, batch=32, optimizer="adam",
                             schedule="cosine", flip=True, crop_pad=2)
        assert client.wait("pytrain", timeout_s=180) == "done"
        metrics = client.get_bytes("models/pytrainsim/metrics").decode()
        assert len(metrics.splitlines()) == 2
        assert client.ls("models/pytrainsim/weights")["newest"] >= 1
        (job,) = [j for j in client.jobs()["jobs"] if j["job"] == "pytrain"]
        assert job["state"] == "done" and job["epochs"] == 2
    finally:
        client.phase_stop("train")


def test_events_see_a_killed_worker(cluster, client):
    # Last: it takes a node away from the module's cluster.
    victim = cluster.nodes["worker2"]["addr"]
    with client.events() as ev:
        tool(cluster.root, "cluster", "kill", "worker2")
        seen = []

        def failed():
            e = ev.next(timeout_s=0.5)
            seen.extend([e] if e else [])
            return e and (e["event"], e["member"]["addr"]) == ("fail",
                                                                victim)
        poll("a fail event for " + victim, failed, timeout_s=20)
    assert all(e["event"] in ("suspect", "fail") for e in seen), seen
    states = {m["addr"]: m["state"] for m in client.members()}
    assert states[victim] == "failed"
    ev.close()
    with pytest.raises(idunno.IdunnoError) as e:
        ev.next()
    assert e.value.code == idunno.ECLOSED
