#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""layers_test: scripts/check-layers finds what it must (TAP output).

1. A small clean tree (compiled here, so the symbol checks run too) passes.
2. The same tree with one bad include, one bad call, one unprefixed symbol,
   one internal header in tools/, sqlite outside ledger/, ledger/ using a
   lower layer other than core and a public header that includes the
   umbrella fails with exactly those file:line reports.
3. A temp copy of this repository reports what the repository reports, and
   a deliberately bad include in the copy (model/ using sdfs/, ledger/
   using wire/) adds exactly that violation.
4. Each rule on the source's words and on calls within a folder, in a tree
   of its own: a timed wait outside core/, CLOCK_REALTIME outside core/
   (a WALL_CLOCK file may), getenv in the library (the model backend, unit
   tests and tools may), a circle among a folder's files (a chain is fine).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("IDUNNO_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.realpath(__file__)))
BUILD = os.environ.get("IDUNNO_BUILD_DIR") or os.path.join(SRC, "build")
SCRIPT = os.path.join(SRC, "scripts", "check-layers")
sys.path.insert(0, os.path.join(SRC, "tests"))
import reaper  # noqa: E402

results = []


def ok(cond, name, detail=""):
    results.append((bool(cond), name, detail))


def run(root, build, *extra):
    r = subprocess.run([sys.executable, SCRIPT, "--root", root, "--build",
                        build] + list(extra), capture_output=True, text=True,
                       timeout=300)
    return r.returncode, set(r.stdout.splitlines())


FILES = {
    "include/idunno/base.h": "#pragma once\nint idn_thing(void);\n",
    "include/idunno/idunno.h": "#pragma once\n#include <idunno/base.h>\n",
    "include/idunno/model.h": "#pragma once\n#include <idunno/base.h>\n",
    "libidunno/core/core.h": "#pragma once\n#include <idunno/base.h>\n"
                             "int core_add(int a, int b);\n",
    "libidunno/core/core.c": "#include \"core/core.h\"\n"
                             "int core_add(int a, int b) { return a + b; }\n"
                             "int idn_thing(void) { return core_add(1, 2); }"
                             "\n",
    "libidunno/sdfs/sdfs.h": "#pragma once\nint sdfs_size(void);\n",
    "libidunno/sdfs/sdfs.c": "#include \"core/core.h\"\n"
                             "#include \"sdfs/sdfs.h\"\n"
                             "int sdfs_size(void) { return core_add(2, 2); }"
                             "\n",
    "libidunno/model/model.c": "#include \"core/core.h\"\n"
                               "int model_run(void);\n"
                               "int model_run(void) { return core_add(0, 1); }"
                               "\n",
    "libidunno/ledger/ledger.c": "#include <sqlite3.h>\n"
                                 "#include \"core/core.h\"\n"
                                 "int ledger_open(void);\n"
                                 "int ledger_open(void) "
                                 "{ return core_add(sqlite3_libversion_number()"
                                 ", 0); }\n",
    "tools/tool.c": "#include <idunno/base.h>\n"
                    "int main(void) { return idn_thing(); }\n",
}


def make_tree(root, files):
    build = os.path.join(root, "build")
    os.makedirs(build, exist_ok=True)
    cmds = []
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    for rel in files:
        if not rel.endswith(".c"):
            continue
        obj = rel.replace("/", "_") + ".o"
        cmd = "cc -I../include -I../libidunno -std=c11 -g -o %s -c ../%s" % (
            obj, rel)
        subprocess.run(cmd, shell=True, cwd=build, check=True)
        cmds.append({"directory": build, "command": cmd, "file": "../" + rel,
                     "output": obj})
    with open(os.path.join(build, "compile_commands.json"), "w") as f:
        json.dump(cmds, f)
    return build


def small_tree(tmp):
    root = os.path.join(tmp, "small")
    rc, out = run(root, make_tree(root, FILES))
    ok(rc == 0 and not out, "a clean tree passes", "%d %s" % (rc, out))

    bad = dict(FILES)
    # Line 2: model includes sdfs and calls it; line 3: an exported name
    # without its folder's prefix.
    bad["libidunno/model/model.c"] = (
        "#include \"core/core.h\"\n#include \"sdfs/sdfs.h\"\n"
        "int run_it(void);\nint run_it(void) { return 0; }\n"
        "int model_run(void);\n"
        "int model_run(void) { return sdfs_size(); }\n")
    bad["tools/tool.c"] = ("#include <idunno/base.h>\n"
                           "#include \"core/core.h\"\n"
                           "int main(void) { return core_add(1, 1); }\n")
    bad["include/idunno/model.h"] = "#pragma once\n" \
        "#include <idunno/idunno.h>\n"
    bad["libidunno/sdfs/sdfs.c"] = FILES["libidunno/sdfs/sdfs.c"] + \
        "#include <sqlite3.h>\n"
    # ledger/ is sqlite and core only, though sdfs/ sits below it.
    bad["libidunno/ledger/ledger.c"] = (
        "#include <sqlite3.h>\n#include \"sdfs/sdfs.h\"\n"
        "int ledger_open(void);\n"
        "int ledger_open(void) { return sdfs_size(); }\n")
    shutil.rmtree(root)
    rc, out = run(root, make_tree(root, bad))
    want = {
        "libidunno/model/model.c:2: includes libidunno/sdfs/sdfs.h: "
        "model must not use sdfs",
        "libidunno/model/model.c:4: run_it: not static, and neither idn_ "
        "nor model's prefix (model_, shim_)",
        "libidunno/model/model.c:6: calls sdfs_size: model must not use sdfs",
        "tools/tool.c:2: includes the internal header libidunno/core/core.h: "
        "tools/ lives on include/idunno/ only",
        "tools/tool.c:3: calls the internal core_add (core/): tools/ lives "
        "on the public API only",
        "libidunno/sdfs/sdfs.c:4: sees sqlite (sqlite3.h): "
        "only ledger may",
        "include/idunno/model.h:2: includes the umbrella "
        "include/idunno/idunno.h: include what it uses",
        "libidunno/ledger/ledger.c:2: includes libidunno/sdfs/sdfs.h: "
        "ledger must not use sdfs",
        "libidunno/ledger/ledger.c:4: calls sdfs_size: ledger must not use "
        "sdfs",
    }
    ok(rc == 1, "a bad tree fails", str(rc))
    for w in sorted(want):
        ok(w in out, "reports " + w.split(": ")[0] + " " +
           w.split(": ")[1].split(" ")[0], "\n# ".join(sorted(out)))
    ok(out == want, "reports nothing else", "\n# ".join(sorted(out - want)))


SDFS_C = FILES["libidunno/sdfs/sdfs.c"]
POSIX = "#define _POSIX_C_SOURCE 200809L\n"
RULES = {
    "timed wait": ({
        "libidunno/sdfs/sdfs.c": POSIX + "#include <pthread.h>\n" + SDFS_C +
        "int sdfs_wait(pthread_cond_t *cv, pthread_mutex_t *m,\n"
        "    const struct timespec *ts)\n"
        "{ return pthread_cond_timedwait(cv, m, ts); }\n",
    }, {"libidunno/sdfs/sdfs.c:8: pthread_cond_timedwait outside core/: "
        "wait with core_cond_wait_until (monotonic)"}),
    "wall clock": ({
        "libidunno/sdfs/sdfs.c": POSIX + "#include <time.h>\n" + SDFS_C +
        "// CLOCK_REALTIME in a comment is no use of it\n"
        "long sdfs_now(void) { struct timespec ts;\n"
        "  clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec; }\n",
        "libidunno/sdfs/cache.c": POSIX + "#include <time.h>\n"
        "long sdfs_mtime_age(long m);\n"
        "long sdfs_mtime_age(long m) { struct timespec ts;\n"
        "  clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec - m; }\n",
    }, {"libidunno/sdfs/sdfs.c:8: CLOCK_REALTIME outside core/ and "
        "WALL_CLOCK: idn_clock_ms for time spans, idn_wall_ms for stamps"}),
    "getenv": ({
        "libidunno/sdfs/sdfs.c": "#include <stdlib.h>\n" + SDFS_C +
        "const char *sdfs_home(void) { return getenv(\"HOME\"); }\n",
        "libidunno/sdfs/sdfs_test.c": "#include <stdlib.h>\n"
        "int main(void) { return getenv(\"X\") != 0; }\n",
        "libidunno/model/torch.c": "#include <stdlib.h>\n"
        "const char *model_path(void);\n"
        "const char *model_path(void) { return getenv(\"M\"); }\n",
        "tools/tool.c": "#include <stdlib.h>\n#include <idunno/base.h>\n"
        "int main(void) { return getenv(\"X\") ? idn_thing() : 0; }\n",
    }, {"libidunno/sdfs/sdfs.c:5: getenv in the library outside "
        "model/shim.cpp, model/torch.c: take it as an option"}),
    "circle": ({
        "libidunno/sdfs/a.c": "int sdfs_a(int n);\nint sdfs_b(int n);\n"
        "int sdfs_a(int n)\n{\n\treturn n ? sdfs_b(n - 1) : 0;\n}\n",
        "libidunno/sdfs/b.c": "int sdfs_a(int n);\nint sdfs_b(int n);\n"
        "int sdfs_b(int n)\n{\n\treturn sdfs_a(n);\n}\n",
        "libidunno/sdfs/c.c": "int sdfs_a(int n);\nint sdfs_c(void);\n"
        "int sdfs_c(void)\n{\n\treturn sdfs_a(3);\n}\n",
    }, {"libidunno/sdfs/a.c:5: calls sdfs_b of b.c, and back: a.c -> b.c "
        "-> a.c: the files of a folder call one way"}),
}


def rule_trees(tmp):
    for name, (files, want) in RULES.items():
        root = os.path.join(tmp, "rule-" + name.replace(" ", "-"))
        rc, out = run(root, make_tree(root, dict(FILES, **files)))
        ok(rc == 1 and out == want, "the %s rule reports exactly its "
           "violation" % name, "\n# ".join(sorted(out ^ want)))


def repo_copy(tmp):
    cc_path = os.path.join(BUILD, "compile_commands.json")
    rel_build = os.path.relpath(os.path.realpath(BUILD),
                                os.path.realpath(SRC))
    root = os.path.join(tmp, "repo")
    for top in ("include", "libidunno", "tools", "tests", "bench",
                "examples", "bindings"):
        if os.path.isdir(os.path.join(SRC, top)):
            shutil.copytree(os.path.join(SRC, top), os.path.join(root, top),
                            ignore=shutil.ignore_patterns("corpus"))
    # The copy's build folder inside the copy where the real one is
    # inside the tree, else beside the copy (meson setup ../b).
    build = (os.path.join(tmp, "build") if rel_build.startswith("..") else
             os.path.join(root, rel_build))
    os.makedirs(build)
    real_root, real_build = os.path.realpath(SRC), os.path.realpath(BUILD)
    with open(cc_path) as f:
        entries = json.load(f)
    for e in entries:
        for k in ("directory", "command", "file"):
            if k in e:
                e[k] = e[k].replace(real_build, build).replace(real_root,
                                                               root)
    with open(os.path.join(build, "compile_commands.json"), "w") as f:
        json.dump(entries, f)
    rc_real, real = run(SRC, BUILD, "--includes-only")
    rc, base = run(root, build, "--includes-only")
    ok(rc == rc_real and base == real,
       "a copy of the repository reports what the repository reports",
       "\n# ".join(sorted(base ^ real)))

    # model/ uses sdfs/ (a row above it); ledger/ uses wire/ (a row
    # below it, but the ledger is sqlite and core alone).
    for rel, header in (("model/desc.c", "sdfs/sdfs.h"),
                        ("ledger/ledger.c", "wire/wire.h")):
        path = os.path.join(root, "libidunno", rel)
        with open(path) as f:
            lines = f.readlines()
        n = next(i for i, l in enumerate(lines) if l.startswith("#include"))
        lines.insert(n, "#include \"%s\"\n" % header)
        with open(path, "w") as f:
            f.writelines(lines)
        rc, out = run(root, build, "--includes-only")
        want = {"libidunno/%s:%d: includes libidunno/%s: %s must not use %s"
                % (rel, n + 1, header, rel.split("/")[0],
                   header.split("/")[0])}
        ok(rc == 1, "a bad include in the copy's %s fails the check" % rel,
           str(rc))
        ok(out - base == want, "and is reported at its file:line",
           "\n# ".join(sorted(out - base)))
        del lines[n]
        with open(path, "w") as f:
            f.writelines(lines)


def main():
    with tempfile.TemporaryDirectory(prefix="idn_layers_") as tmp:
        reaper.folder(tmp)
        # The compilers' temp files too, should we be killed midway.
        os.environ["TMPDIR"] = tmp
        small_tree(tmp)
        rule_trees(tmp)
        repo_copy(tmp)
    print("1..%d" % len(results))
    for i, (good, name, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if good else "not ok", i, name))
        if not good and detail:
            print("# " + detail)
    return 0 if all(r[0] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
