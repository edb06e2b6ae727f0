// Runs a Python script inside Pyodide (Node, no browser) with this checkout's
// clark_hash_web package copied into Pyodide's file system; prints the
// script's last expression. Used by tests/test_sketch_file_pyodide.py.
// Usage: node tests/test_sketch_pyodide.mjs PYODIDE_DIR PACKAGE_DIR SCRIPT
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pyodideDir, pkgDir, scriptPath] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const py = await loadPyodide({ indexURL: pyodideDir + path.sep });

function copyPackage(src, dst) {
  py.FS.mkdirTree(dst);
  for (const name of fs.readdirSync(src)) {
    const full = path.join(src, name);
    if (fs.statSync(full).isDirectory()) {
      if (name !== "__pycache__") copyPackage(full, `${dst}/${name}`);
    } else if (name.endsWith(".py") || name.endsWith(".json")) {
      py.FS.writeFile(`${dst}/${name}`, fs.readFileSync(full));
    }
  }
}

copyPackage(pkgDir, "/pkgs/clark_hash_web");
py.runPython("import sys; sys.path.insert(0, '/pkgs')");
const out = py.runPython(fs.readFileSync(scriptPath, "utf8"));
process.stdout.write(String(out));
