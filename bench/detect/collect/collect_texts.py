#!/usr/bin/env python3
"""Raw benign text rows: real content a tool could hand back to a model.

Sources (each a separate `source` so that a by-source hold-out means something):
  files-npm         README/source/config files of the npm MCP servers installed for the capture
  files-pypi        source files, metadata and docs of the PyPI MCP servers installed for it
  web-debian-doc    HTML pages from Debian doc packages (/usr/share/doc/**.html); half kept as HTML,
                    half as the text a fetch tool would extract (chosen by hash of the path)
  email-cpython     the sample messages of CPython's test_email suite (all pyenv versions, deduped)
  email-packages    mail-parser's test messages (PyPI sdist) rendered as a mail tool shows them, and the
                    git-doc howto files that are mailing-list messages
  api-npm-registry  npm registry documents from the local npm cache (the responses npm fetched while
                    installing), reduced to what `npm view --json` shows
  api-botocore      example API responses shipped in botocore's examples-1.json files
  server-text       the captured servers' own `instructions` and prompts/list (what the model reads
                    besides the tools)
  cmd-man           `man` pages rendered as a shell tool would return them (tool_output)

Sampling is deterministic: candidates sorted by sha256 of their path, first N taken.
Every text is capped at 4,000 characters, cut at a line boundary (common.cap).
Writes $RAW/texts/<source>.jsonl.
"""
import base64
import glob
import hashlib
import html.parser
import json
import os
import re
import subprocess
from pathlib import Path

from common import cap, write_jsonl

RAW = Path(os.environ.get("RAW", "/tmp/detect-raw"))
ROOT = Path(os.environ.get("CAPTURE_ROOT", "/tmp/mcp-capture"))


def h(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def readable(path: Path, min_len=200):
    try:
        b = path.read_bytes()[:200_000]
        t = b.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if len(t) < min_len or "\x00" in t:
        return None
    head = t[:4000]
    if max((len(line) for line in head.split("\n")), default=0) > 1000:
        return None  # minified or generated
    return t


def sample(paths, n, reader=readable):
    out = []
    seen_names = set()
    for p in sorted(set(paths), key=lambda p: h(str(p))):
        t = reader(Path(p))
        if t is None:
            continue
        out.append((p, t))
        if len(out) >= n:
            break
    return out


def pkg_of(path: str, marker: str) -> str:
    rest = path.split(marker, 1)[1].split("/")
    return "/".join(rest[:2]) if rest[0].startswith("@") else rest[0]


# security scanners installed as hard-negative *tools*: their docs belong to security-docs (which
# filters quoted payloads), not to the general file samples
SKIP_DIRS = ("/npm/agent-security-scanner-mcp/", "/py/agent-prompt-injection-firewall-mcp/")


def files_npm(n=220):
    pats = ["README.md", "readme.md", "*.md", "*.js", "*.ts", "*.mjs", "*.json", "*.yml", "*.yaml"]
    paths = []
    for pat in pats:
        paths += glob.glob(str(ROOT / f"npm/*/node_modules/**/{pat}"), recursive=True)
    paths = [p for p in paths if "/test/" not in p and not p.endswith((".min.js", ".d.ts", ".map"))
             and not any(d in p for d in SKIP_DIRS)
             and "package-lock" not in p]
    rows = []
    for p, t in sample(paths, n):
        pkg = pkg_of(p, "/node_modules/")
        rel = p.rsplit("/node_modules/", 1)[1]
        rows.append({"source": "files-npm", "label": "benign", "class": "benign", "kind": "file",
                     "text": cap(t), "origin": f"npm:{pkg} {rel}", "licence": "licence of the npm package"})
    return rows


def files_pypi(n=220):
    paths = []
    for pat in ["*.py", "METADATA", "*.md", "*.rst", "*.txt", "*.toml", "*.cfg", "*.ini"]:
        paths += glob.glob(str(ROOT / f"py/*/lib/python3.11/site-packages/**/{pat}"), recursive=True)
    paths = [p for p in paths if "/tests/" not in p and "/test/" not in p and "/botocore/data/" not in p
             and not any(d in p for d in SKIP_DIRS)
             and "/RECORD" not in p]
    rows = []
    for p, t in sample(paths, n):
        rel = p.split("/site-packages/", 1)[1]
        rows.append({"source": "files-pypi", "label": "benign", "class": "benign", "kind": "file",
                     "text": cap(t), "origin": f"pypi: site-packages/{rel}", "licence": "licence of the PyPI package"})
    return rows


class _Text(html.parser.HTMLParser):
    SKIP = {"script", "style", "head"}
    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre", "dt", "dd", "section", "table"}

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self):
        t = "".join(self.parts)
        t = re.sub(r"[ \t]+", " ", t)
        return re.sub(r"\n\s*\n+", "\n\n", t).strip()


def web_debian(n=220):
    paths = glob.glob("/usr/share/doc/**/*.html", recursive=True) + glob.glob("/usr/share/doc/**/*.htm", recursive=True)
    rows = []
    for p, t in sample(paths, n * 2, lambda p: readable(p, 500)):
        as_text = int(h(p), 16) % 2 == 0
        if as_text:
            x = _Text()
            x.feed(t)
            t = x.text()
            if len(t) < 200:
                continue
        pkg = p.split("/usr/share/doc/", 1)[1].split("/")[0]
        rows.append({"source": "web-debian-doc", "label": "benign", "class": "benign", "kind": "web",
                     "text": cap(t), "origin": f"debian:{pkg} {p}" + (" (text extracted)" if as_text else ""),
                     "licence": f"see /usr/share/doc/{pkg}/copyright"})
        if len(rows) >= n:
            break
    return rows


def email_cpython():
    seen, rows = set(), []
    for p in sorted(glob.glob("/root/.pyenv/versions/*/lib/python3*/test/test_email/data/msg_*.txt")):
        t = Path(p).read_bytes().decode("utf-8", "replace")
        k = h(t)
        if k in seen:
            continue
        seen.add(k)
        ver = p.split("/versions/")[1].split("/")[0]
        rows.append({"source": "email-cpython", "label": "benign", "class": "benign", "kind": "email",
                     "text": cap(t), "origin": f"CPython {ver} Lib/test/test_email/data/{Path(p).name}",
                     "licence": "PSF-2.0"})
    return rows


def _render_mail(raw: bytes) -> str:
    """What a mail tool returns: the main headers and the first text part (HTML turned into text)."""
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    head = [f"{k}: {msg[k]}" for k in ("From", "To", "Cc", "Date", "Subject") if msg[k]]
    body = None
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is not None:
            body = part.get_content()
            if part.get_content_type() == "text/html":
                x = _Text()
                x.feed(body)
                body = x.text()
    except (KeyError, LookupError, ValueError):
        body = None
    atts = [a.get_filename() for a in msg.iter_attachments() if a.get_filename()] if msg.is_multipart() else []
    out = "\n".join(head) + "\n\n" + (body or "").strip()
    if atts:
        out += "\n\nAttachments: " + ", ".join(atts)
    return out


def email_packages():
    """mail-parser's test messages (sdist, Apache-2.0), rendered; git-doc howto files that are mails."""
    rows = []
    sd = Path(os.environ.get("SDISTS", "/tmp/mcp-capture/pkgs/sd"))
    for p in sorted(glob.glob(str(sd / "mail_parser-*/tests/mails/*"))):
        t = _render_mail(Path(p).read_bytes())
        if len(t) < 150:
            continue
        rows.append({"source": "email-packages", "label": "benign", "class": "benign", "kind": "email",
                     "text": cap(t), "origin": f"pypi:mail-parser sdist tests/mails/{Path(p).name} (rendered: headers + "
                                               "first text part)", "licence": "Apache-2.0"})
    for p in sorted(glob.glob("/usr/share/doc/git-doc/howto/*.txt")):
        t = Path(p).read_text(errors="replace")
        if not re.search(r"^(From|Subject|Date): ", t[:600], re.M):
            continue
        rows.append({"source": "email-packages", "label": "benign", "class": "benign", "kind": "email",
                     "text": cap(t), "origin": f"debian:git-doc {p} (a mailing-list message)", "licence": "GPL-2.0"})
    return rows


def api_npm(n=220):
    home = Path.home() / ".npm/_cacache"
    docs = []
    for idx in sorted(glob.glob(str(home / "index-v5/**/*"), recursive=True)):
        if os.path.isdir(idx):
            continue
        for line in Path(idx).read_text(errors="replace").splitlines():
            try:
                e = json.loads(line.split("\t", 1)[1])
            except (IndexError, ValueError):
                continue
            key = e.get("key", "")
            if not key.startswith("make-fetch-happen:request-cache:https://registry.npmjs.org/") or not e.get("integrity"):
                continue
            name = key.rsplit("/", 1)[1] if "%2f" not in key.lower() else key.split("registry.npmjs.org/")[1]
            if name.endswith(".tgz") or "/-/" in key:
                continue
            algo, b64 = e["integrity"].split("-", 1)
            hx = base64.b64decode(b64).hex()
            docs.append((key, home / f"content-v2/{algo}/{hx[:2]}/{hx[2:4]}/{hx[4:]}"))
    rows, seen = [], set()
    for key, path in sorted(docs, key=lambda d: h(d[0])):
        if key in seen or not path.exists():
            continue
        seen.add(key)
        try:
            d = json.loads(path.read_bytes())
        except ValueError:
            continue
        latest = (d.get("dist-tags") or {}).get("latest")
        v = (d.get("versions") or {}).get(latest)
        if not v:
            continue
        view = {k: v[k] for k in ("name", "version", "description", "keywords", "license", "homepage", "repository",
                                  "bugs", "main", "bin", "engines", "dependencies", "peerDependencies", "dist",
                                  "maintainers") if k in v}
        view["dist-tags"] = d.get("dist-tags")
        view["modified"] = d.get("modified") or (d.get("time") or {}).get("modified")
        t = json.dumps(view, indent=2, ensure_ascii=False)
        rows.append({"source": "api-npm-registry", "label": "benign", "class": "benign", "kind": "api_json",
                     "text": cap(t), "origin": key.split("request-cache:", 1)[1] + f" (latest {latest})",
                     "licence": "npm registry metadata of the package"})
        if len(rows) >= n:
            break
    return rows


def api_botocore(n=220):
    files = sorted(set(glob.glob(str(ROOT / "py/*/lib/python3.11/site-packages/botocore/data/*/*/examples-1.json"))),
                   key=lambda p: p.split("/botocore/data/")[1])
    seen, cands = set(), []
    for f in files:
        rel = f.split("/botocore/data/")[1]
        if rel in seen:
            continue
        seen.add(rel)
        d = json.loads(Path(f).read_text())
        for op, exs in (d.get("examples") or {}).items():
            for i, ex in enumerate(exs):
                out = ex.get("output")
                if out and len(json.dumps(out)) > 150:
                    cands.append((f"botocore/data/{rel} {op}[{i}].output", out))
    rows = []
    for origin, out in sorted(cands, key=lambda c: h(c[0]))[:n]:
        rows.append({"source": "api-botocore", "label": "benign", "class": "benign", "kind": "api_json",
                     "text": cap(json.dumps(out, indent=2, ensure_ascii=False)), "origin": f"pypi:botocore {origin}",
                     "licence": "Apache-2.0"})
    return rows


def cmd_man(n=180):
    pages = sorted(glob.glob("/usr/share/man/man1/*.1*"), key=h)
    rows = []
    env = dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0", LANG="C.UTF-8")
    for p in pages:
        name = Path(p).name.split(".1")[0]
        try:
            r = subprocess.run(["man", "-P", "cat", "-l", p], capture_output=True, env=env, timeout=20)
        except subprocess.TimeoutExpired:
            continue
        t = re.sub(r".\x08", "", r.stdout.decode("utf-8", "replace"))
        if r.returncode != 0 or len(t) < 300:
            continue
        rows.append({"source": "cmd-man", "label": "benign", "class": "benign", "kind": "tool_output",
                     "text": cap(t), "origin": f"man page {name}(1) from Debian ({p})",
                     "licence": "licence of the Debian package that ships it"})
        if len(rows) >= n:
            break
    return rows


def server_text():
    """The `instructions` of the captured servers' initialize result and their prompts/list (rendered
    one prompt a line: name, description, arguments), one row per server and kind of text."""
    rows = []
    for f in sorted((Path(__file__).resolve().parent / "captures").glob("*.json")):
        d = json.loads(f.read_text())
        origin = f"{d['registry']}:{d['origin']}"
        ins = d.get("instructions")
        if isinstance(ins, str) and len(ins.strip()) >= 40:
            rows.append({"source": "server-text", "label": "benign", "class": "benign", "kind": "other",
                         "text": cap(ins.strip()), "origin": f"{origin} initialize result: instructions",
                         "licence": d.get("licence") or "see package"})
        lines = []
        for pr in d.get("prompts") or []:
            args = ", ".join(a.get("name", "") + (f" ({a['description']})" if a.get("description") else "")
                             for a in pr.get("arguments") or [])
            lines.append(f"{pr.get('name', '')}: {pr.get('description') or ''}" + (f" [arguments: {args}]" if args else ""))
        if lines and len("\n".join(lines)) >= 40:
            rows.append({"source": "server-text", "label": "benign", "class": "benign", "kind": "other",
                         "text": cap("\n".join(lines)), "origin": f"{origin} prompts/list (first page)",
                         "licence": d.get("licence") or "see package"})
    return rows


def main():
    for name, fn in [("files-npm", files_npm), ("files-pypi", files_pypi), ("web-debian-doc", web_debian),
                     ("email-cpython", email_cpython), ("email-packages", email_packages),
                     ("api-npm-registry", api_npm), ("api-botocore", api_botocore),
                     ("cmd-man", cmd_man), ("server-text", server_text)]:
        rows = fn()
        write_jsonl(RAW / f"texts/{name}.jsonl", rows)
        print(name, len(rows))


if __name__ == "__main__":
    main()
