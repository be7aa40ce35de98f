#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""install_test: `meson install` into a temp DESTDIR (TAP output).

Installs the build (no rebuild) under a temp folder, checks what landed
where (library with its SONAME, every public header, tools, torch module,
pkg-config file, Python package), then builds tests/install/hello.c and
the installed examples (share/doc/idunno/examples, with their Makefile)
against the installed copy with `pkg-config --cflags --libs idunno` and
runs hello and the installed tools and Python package: each
must load the installed library (and hello the installed torch module),
not the build tree's.

    install_test.py MESON BUILD_DIR SOURCE_DIR
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

MESON, BUILD, SRC = sys.argv[1:4]
sys.path.insert(0, os.path.join(SRC, "tests"))
import reaper  # noqa: E402
results = []


def ok(cond, name, detail=""):
    results.append((bool(cond), name, detail))
    return bool(cond)


def run(cmd, env=None, **kw):
    e = dict(os.environ)
    # Nothing may point the programs back at the build tree.
    for k in ("IDUNNO_TORCH_MODULE", "IDUNNO_LIB", "LD_LIBRARY_PATH",
              "PYTHONPATH"):
        e.pop(k, None)
    e.update(env or {})
    r = subprocess.run(cmd, capture_output=True, text=True, env=e,
                       timeout=300, **kw)
    return r.returncode, r.stdout, r.stderr


def introspect(what):
    import json
    rc, out, err = run([MESON, "introspect", BUILD, what])
    return json.loads(out) if rc == 0 else {}


def main():
    tmp = tempfile.mkdtemp(prefix="idunno-install-")
    reaper.folder(tmp)
    reaper.processes_under(tmp)
    try:
        check(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    for i, (good, name, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if good else "not ok", i, name))
        for line in detail.splitlines() if not good else []:
            print("# " + line)
    return 0 if all(r[0] for r in results) else 1


def check(tmp):
    dest = os.path.join(tmp, "dest")
    rc, out, err = run([MESON, "install", "-C", BUILD, "--no-rebuild",
                        "--quiet", "--destdir", dest])
    if not ok(rc == 0, "meson install --destdir", out + err):
        return
    opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
    prefix = dest + opts["prefix"]

    def staged(option):  # a directory option may be relative or absolute
        return dest + os.path.join(opts["prefix"], opts[option])

    libdir = staged("libdir")
    incdir = os.path.join(staged("includedir"), "idunno")
    bindir = staged("bindir")

    # The library, its links and SONAME.
    real = glob.glob(os.path.join(libdir, "libidunno.so.*.*.*"))
    ok(len(real) == 1 and
       os.path.realpath(os.path.join(libdir, "libidunno.so")) ==
       os.path.realpath(real[0]) and
       os.path.realpath(os.path.join(libdir, "libidunno.so.0")) ==
       os.path.realpath(real[0]), "libidunno.so -> .so.0 -> .so.0.x.y",
       repr(os.listdir(libdir)))
    rc, out, err = run(["readelf", "-d", os.path.join(libdir,
                                                      "libidunno.so")])
    ok(re.search(r"SONAME\).*\[libidunno\.so\.0\]", out), "SONAME is "
       "libidunno.so.0", out + err)

    # Every public header, nothing else.
    want = sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(SRC, "include/idunno/*.h")))
    have = sorted(os.listdir(incdir)) if os.path.isdir(incdir) else []
    ok(want == have, "headers under include/idunno/",
       "want %s\nhave %s" % (want, have))

    torch = os.path.join(libdir, "idunno", "libidunno_torch.so")
    ok(os.path.isfile(torch), "torch module in LIBDIR/idunno/")
    pc = os.path.join(libdir, "pkgconfig", "idunno.pc")
    ok(os.path.isfile(pc), "pkgconfig/idunno.pc")
    ok(os.path.isfile(os.path.join(staged("datadir"), "idunno",
                                   "export.py")), "share/idunno/export.py")

    # The tools run from the staged prefix, on the staged library.
    for t in ("idunno", "idunno-coord", "idunno-worker"):
        rc, out, err = run(["ldd", os.path.join(bindir, t)])
        m = re.search(r"libidunno\.so\.0 => (\S+)", out)
        ok(m and os.path.realpath(m.group(1)).startswith(dest),
           "bin/%s links the installed library" % t, out + err)
    rc, out, err = run([os.path.join(bindir, "idunno"), "--help"])
    ok(rc == 0 and "cluster up" in out + err, "bin/idunno --help runs",
       out + err)

    # pkg-config: the .pc says prefix=/usr/local or the like; point it at
    # the staged copy.
    pkg_env = {"PKG_CONFIG_PATH": os.path.dirname(pc)}
    rc, flags, err = run(["pkg-config", "--define-variable=prefix=" + prefix,
                          "--cflags", "--libs", "idunno"], env=pkg_env)
    if not ok(rc == 0 and "-lidunno" in flags, "pkg-config --cflags --libs "
              "idunno", flags + err):
        return
    rc, version, err = run(["pkg-config", "--modversion", "idunno"],
                           env=pkg_env)
    rc2, out, _ = run([MESON, "introspect", BUILD, "--projectinfo"])
    ok(rc == 0 and '"version": "%s"' % version.strip() in out,
       "pkg-config --modversion is the project's", version + err)

    cc = os.environ.get("CC", "cc").split()
    cflags = ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
              "-D_DEFAULT_SOURCE"]
    ldflags = flags.split() + ["-Wl,-rpath," + libdir]
    hello = os.path.join(tmp, "hello")
    rc, out, err = run(cc + cflags + ["-o", hello, os.path.join(
        SRC, "tests/install/hello.c")] + ldflags)
    if ok(rc == 0, "hello.c builds against the installed copy", out + err):
        args = [hello, tmp]
        desc = os.path.join(BUILD, "models", "lenet5.desc")
        pt = os.path.join(BUILD, "models", "lenet5.pt")
        if os.path.isfile(pt):
            args += [desc, pt]
        rc, out, err = run(args, env={"OPENBLAS_NUM_THREADS": "1"})
        ok(rc == 0 and "no such file or version" in out and
           "members of nobody: " in out and "sim backend" in out,
           "hello runs: strerror, key, client, sim model", out + err)
        libs = re.findall(r"^mapped: (\S+)", out, re.M)
        ok(libs and all(p.startswith(dest) for p in libs) and
           any("libidunno.so" in p for p in libs),
           "hello maps the installed libidunno", out)
        if os.path.isfile(pt):
            ok("torch backend" in out and torch in libs,
               "the installed library loads the installed torch module",
               out + err)

    # The examples: installed as source with a Makefile, built from a copy
    # of that folder with make as a user would, the library found by
    # pkg-config.
    exdir = os.path.join(staged("datadir"), "doc", "idunno", "examples")
    want = sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(SRC, "examples", "*.c")))
    have = sorted(p for p in os.listdir(exdir) if p.endswith(".c")) \
        if os.path.isdir(exdir) else []
    ok(want and want == have and
       os.path.isfile(os.path.join(exdir, "Makefile")),
       "examples and their Makefile in share/doc/idunno/examples",
       "want %s\nhave %s" % (want, have))
    work = os.path.join(tmp, "examples")
    if os.path.isdir(exdir):
        shutil.copytree(exdir, work)
        rc, out, err = run(["make", "-C", work, "CFLAGS=-Werror",
                            "PKG_CONFIG=pkg-config --define-variable="
                            "prefix=" + prefix], env=pkg_env)
        ok(rc == 0, "the installed examples build with make", out + err)
    for name in (n[:-2] for n in have):
        exe = os.path.join(work, name)
        rc, out, err = run([exe]) if os.path.isfile(exe) else (-1, "", "")
        ok(rc == 2 and "usage" in err, "examples/%s runs (usage)" % name,
           out + err)
        rc, out, err = run(["ldd", exe]) if rc == 2 else (rc, "", "")
        m = re.search(r"libidunno\.so\.0 => (\S+)", out)
        ok(m and os.path.realpath(m.group(1)).startswith(dest),
           "examples/%s links the installed library" % name, out + err)

    # The Python package, on the installed library.
    py = glob.glob(os.path.join(prefix, "lib", "python3*", "*-packages",
                                "idunno", "__init__.py"))
    if ok(len(py) == 1, "Python package installed", repr(py)):
        site = os.path.dirname(os.path.dirname(py[0]))
        rc, out, err = run(["/usr/bin/python3", "-c",
                            "import idunno; print(idunno.LIBRARY); "
                            "print(idunno.strerror(idunno.EUNAVAIL))"],
                           env={"PYTHONPATH": site}, cwd=tmp)
        lines = out.splitlines()
        ok(rc == 0 and len(lines) == 2 and lines[0].startswith(dest) and
           lines[1] == "unreachable node, too few replicas or no coordinator",
           "the installed package loads the installed library", out + err)


if __name__ == "__main__":
    sys.exit(main())
