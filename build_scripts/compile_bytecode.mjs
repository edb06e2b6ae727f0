/**
 * compile_bytecode.mjs: precompile Python sources for Pyodide, with Pyodide.
 *
 * Usage (build_site.py runs it):
 *
 *     node build_scripts/compile_bytecode.mjs <pyodide dir> stdlib <in.zip> <out.zip> [package <in.whl> <out.zip>]
 *
 * Pyodide's python_stdlib.zip holds only .py sources, and so does our wheel,
 * so every page start compiled the ~190 modules Python and Pyodide import
 * while starting (about 1.3 s of a 2 s start on 2 cores) plus our package
 * (about 0.2 s). This script boots the same Pyodide under Node, compiles with
 * that interpreter (so the bytecode matches it exactly) and writes:
 *
 * - stdlib:  the zip with, beside every .py, its .pyc (zipimport prefers it);
 *            code objects carry the path the zip is imported from
 *            (/lib/python314.zip/...), so tracebacks read as before;
 * - package: a zip of __pycache__/<module>.<cache tag>.pyc entries for every
 *            .py of the wheel, to unpack into site-packages next to the wheel's
 *            files (the wheel itself stays as built).
 *
 * All .pyc files are "unchecked hash" pycs (PEP 552): valid without reading
 * the source, which only a rebuild changes. Output is deterministic (entry
 * order and timestamps of the input).
 */

import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const [pyodideDir, ...jobs] = process.argv.slice(2);
if (!pyodideDir || jobs.length === 0 || jobs.length % 3) {
  console.error("usage: node compile_bytecode.mjs <pyodide dir> (stdlib|package) <in> <out> [...]");
  process.exit(2);
}
const dir = resolve(pyodideDir) + "/";
const { loadPyodide } = await import(dir + "pyodide.mjs");
const py = await loadPyodide({ indexURL: dir });
py.runPython(`
import importlib.util
import sys
import sysconfig
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

STDLIB_MOUNT = [p for p in sys.path if p.endswith(".zip")][0]
SITE_PACKAGES = sysconfig.get_path("purelib")


def pyc_bytes(source, path):
    code = compile(source, path, "exec", dont_inherit=True)
    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False))


def entry(name, like):
    e = zipfile.ZipInfo(name, like.date_time)
    e.compress_type = zipfile.ZIP_DEFLATED
    e.external_attr = like.external_attr
    return e


def compile_stdlib(src_path, out_path):
    n = 0
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(out_path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, data)
            if info.filename.endswith(".py"):
                out.writestr(entry(info.filename + "c", info), pyc_bytes(data, f"{STDLIB_MOUNT}/{info.filename}"))
                n += 1
    return n


def compile_package(src_path, out_path):
    n = 0
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(out_path, "w") as out:
        for info in src.infolist():
            if not info.filename.endswith(".py"):
                continue
            path = f"{SITE_PACKAGES}/{info.filename}"
            cached = importlib.util.cache_from_source(path)[len(SITE_PACKAGES) + 1:]
            out.writestr(entry(cached, info), pyc_bytes(src.read(info), path))
            n += 1
    return n
`);
const version = py.runPython("sys.version.split()[0]");
for (let i = 0; i < jobs.length; i += 3) {
  const [kind, input, output] = jobs.slice(i, i + 3);
  if (kind !== "stdlib" && kind !== "package") throw new Error(`unknown kind ${kind}`);
  py.FS.writeFile("/tmp/in.zip", new Uint8Array(readFileSync(input)));
  const n = py.runPython(`compile_${kind}("/tmp/in.zip", "/tmp/out.zip")`);
  writeFileSync(output, py.FS.readFile("/tmp/out.zip"));
  console.log(`compile_bytecode: ${kind}: ${n} modules compiled with Python ${version} -> ${output}`);
}
