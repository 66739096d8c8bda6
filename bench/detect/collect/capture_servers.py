#!/usr/bin/env python3
"""Install-dir aware driver: capture every server listed in servers.json with mcp_capture.py.

Packages are installed beforehand outside the repo (see DATA.md):
  npm:  $ROOT/npm/<pkg with / and @ as _>/node_modules/<pkg>
  pypi: $ROOT/py/<pkg>/ (a venv)
Captures go to captures/<slug>.json (committed) so the data builds without reinstalling.

    python3 capture_servers.py [--root /tmp/mcp-capture] [--only NAME ...] [--servers servers-extra.json]
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def slug(pkg: str) -> str:
    return pkg.replace("@", "").replace("/", "__")


def npm_cmd(root: Path, spec: dict):
    d = root / "npm" / spec["package"].replace("/", "_").replace("@", "_") / "node_modules" / spec["package"]
    pj = json.loads((d / "package.json").read_text())
    b = pj.get("bin")
    if isinstance(b, dict):
        name = spec.get("bin") or (next(iter(b)) if len(b) == 1 else None)
        if name is None:
            base = spec["package"].split("/")[-1]
            name = base if base in b else next(iter(b))
        b = b[name]
    if not b:
        b = pj.get("main", "index.js")
    return ["node", str(d / b)], f"{spec['package']}@{pj['version']}", pj.get("license", "")


def pypi_cmd(root: Path, spec: dict):
    venv = root / "py" / spec["package"]
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import sys,importlib.metadata as m;d=m.distribution(sys.argv[1]);"
                          "print(d.version);print(d.metadata.get('License-Expression') or d.metadata.get('License') or '');"
                          "print(' '.join(e.name for e in d.entry_points if e.group=='console_scripts'))",
                          spec["package"]], capture_output=True, text=True, check=True).stdout.split("\n")
    version, lic, scripts = out[0], out[1], out[2].split()
    name = spec.get("bin") or (scripts[0] if scripts else None)
    return [str(venv / "bin" / name)], f"{spec['package']}@{version}", lic.strip()[:80]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/mcp-capture")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--skip-existing", action="store_true")
    ap.add_argument("--servers", default="servers.json", help="server list, relative to this folder")
    a = ap.parse_args()
    root = Path(a.root)
    specs = json.loads((HERE / a.servers).read_text())
    (HERE / "captures").mkdir(exist_ok=True)
    for spec in specs:
        if a.only and spec["package"] not in a.only:
            continue
        out = HERE / "captures" / f"{slug(spec['package'])}.json"
        if a.skip_existing and out.exists():
            continue
        try:
            cmd, origin, lic = (npm_cmd if spec["registry"] == "npm" else pypi_cmd)(root, spec)
        except Exception as e:  # not installed
            print(f"SKIP {spec['package']}: {e}", file=sys.stderr)
            continue
        env = dict(os.environ)
        env["CAPTURE_ENV_JSON"] = json.dumps(spec.get("env", {}))
        env["CAPTURE_CWD"] = "/tmp"
        tmp = Path("/tmp/mcp-capture/raw") / out.name
        tmp.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, str(HERE / "mcp_capture.py"), str(tmp), origin, "--", *cmd,
                            *spec.get("args", [])], env=env)
        if r.returncode == 0:
            data = json.loads(tmp.read_text())
            data["registry"] = spec["registry"]
            data["package"] = spec["package"]
            data["licence"] = spec.get("licence") or lic
            data["command"] = [Path(cmd[-1]).name, *spec.get("args", [])]
            out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
