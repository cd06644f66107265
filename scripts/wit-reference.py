#!/usr/bin/env python3
"""A Markdown reference of the plugin contract, generated from the .wit.

    python3 scripts/wit-reference.py [--version 0.1.x] [--out FILE | --check FILE]

The contract is wit/vX.Y.Z/forge.wit and its `///` comments are its
documentation; a hand-written copy would drift from it. This renders the
newest version folder under wit/ (or --version) to Markdown on stdout, into
FILE (--out), or compares it with FILE (--check: exit 1 when FILE is stale;
host/tests/contract_reference.rs runs that on docs/contract.md).

The parser knows the part of WIT the contract uses (package, interface,
world, record, enum, variant, flags, type, resource, use, func, import,
export), one declaration or field per line. It stops with an error on
anything else, and when a `///` comment would not reach the output.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIT = os.path.join(ROOT, "wit")
DOC_PATH = "docs/contract.md"
ID = r"%?[a-z][a-z0-9-]*"
BLOCKS = ("record", "enum", "variant", "flags")


class WitError(Exception):
    pass


def versions():
    """The version folders under wit/, oldest first."""
    found = [d[1:] for d in os.listdir(WIT) if re.fullmatch(r"v\d+\.\d+\.\d+", d)]
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


class Parser:
    def __init__(self, path):
        self.path = path
        self.pkg = {"name": None, "doc": [], "interfaces": [], "worlds": []}
        self.stack = []  # open blocks, innermost last
        self.doc = []  # `///` lines waiting for their item
        self.docs = []  # every `///` line attached to an item

    def fail(self, n, msg):
        raise WitError(f"{self.path}:{n}: {msg}")

    def take(self):
        doc, self.doc = self.doc, []
        self.docs += doc
        return doc

    def parse(self):
        text = open(self.path, encoding="utf-8").read()
        if "/*" in text:
            self.fail(text[: text.index("/*")].count("\n") + 1, "block comments are not supported")
        stmt, start = "", 0
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("///"):
                self.doc.append(line[4:] if line.startswith("/// ") else line[3:])
            elif not line or line.startswith("//"):
                continue
            elif self.stack and self.stack[-1]["kind"] in BLOCKS:
                self.member(n, line)
            else:
                # A declaration may span lines; it ends with `{`, `}` or `;`.
                stmt, start = (stmt + " " + line).strip(), start or n
                if stmt[-1] in "{};":
                    self.statement(start, re.sub(r"\s+", " ", stmt))
                    stmt, start = "", 0
        if stmt or self.stack:
            self.fail(n, "unexpected end of file")
        if self.doc:
            self.fail(n, "a doc comment at the end of the file documents nothing")
        total = len(re.findall(r"^\s*///", text, re.M))
        if len(self.docs) != total:
            self.fail(n, f"{total - len(self.docs)} `///` lines not attached to an item")
        return self.pkg

    def close(self, n):
        if self.doc:
            self.fail(n, "a doc comment before `}` documents nothing")
        if not self.stack:
            self.fail(n, "`}` without an open block")
        self.stack.pop()

    def statement(self, n, s):
        where = self.stack[-1] if self.stack else None
        kind = where["kind"] if where else "top"
        if s == "}":
            return self.close(n)
        if kind == "top":
            if m := re.fullmatch(r"package (\S+);", s):
                self.pkg["name"], self.pkg["doc"] = m[1], self.take()
                return
            if m := re.fullmatch(rf"(interface|world) ({ID}) \{{", s):
                item = {"kind": m[1], "name": m[2], "doc": self.take(), "items": []}
                self.pkg[m[1] + "s"].append(item)
                self.stack.append(item)
                return
        elif kind == "interface":
            if m := re.fullmatch(rf"({'|'.join(BLOCKS)}) ({ID}) \{{", s):
                item = {"kind": m[1], "name": m[2], "doc": self.take(), "cases": []}
                where["items"].append(item)
                self.stack.append(item)
                return
            if m := re.fullmatch(rf"type ({ID}) = (.+);", s):
                where["items"].append({"kind": "type", "name": m[1], "doc": self.take(), "ty": m[2]})
                return
            if m := re.fullmatch(rf"resource ({ID})( \{{|;)", s):
                item = {"kind": "resource", "name": m[1], "doc": self.take(), "items": []}
                where["items"].append(item)
                if m[2] != ";":
                    self.stack.append(item)
                return
        if kind in ("interface", "world") and (m := re.fullmatch(r"use (\S+)\.\{(.+)\};", s)):
            names = [x.strip() for x in m[2].split(",")]
            where["items"].append({"kind": "use", "from": m[1], "names": names, "doc": self.take()})
            return
        if kind == "world" and (m := re.fullmatch(rf"(import|export) ({ID});", s)):
            where["items"].append({"kind": m[1], "name": m[2], "doc": self.take()})
            return
        if kind in ("interface", "resource") and (
            m := re.fullmatch(rf"({ID}): ((?:static )?func\(.*)", s)
        ):
            where["items"].append({"kind": "func", "name": m[1], "sig": s, "doc": self.take()})
            return
        if kind == "resource" and s.startswith("constructor("):
            where["items"].append({"kind": "func", "name": "constructor", "sig": s, "doc": self.take()})
            return
        self.fail(n, f"unrecognised in {kind}: {s}")

    def member(self, n, line):
        block = self.stack[-1]
        if line == "}":
            return self.close(n)
        pattern = {
            "record": rf"({ID}): (.+?),?",
            "variant": rf"({ID})(?:\((.+)\))?,?",
        }.get(block["kind"], rf"({ID}),?()")
        m = re.fullmatch(pattern, line)
        if not m:
            self.fail(n, f"unrecognised in {block['kind']} {block['name']}: {line}")
        block["cases"].append({"name": m[1], "ty": m[2], "doc": self.take()})


def cell(doc):
    """A doc comment as one table cell: lines joined, paragraphs kept."""
    paras = " ".join(line.strip() or "\n" for line in doc).split("\n")
    return "<br><br>".join(p.strip() for p in paras).replace("|", "\\|")


def slug(heading):
    """GitHub's anchor for a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def link(name):
    return f"[`{name}`](#{slug('Interface ' + name)})"


def para(doc):
    """A doc comment as Markdown lines, then a blank line (nothing when empty)."""
    return doc + [""] if doc else []


def uses(u):
    return u["doc"] + [f"Uses {', '.join(f'`{n}`' for n in u['names'])} from {link(u['from'])}.", ""]


def first_sentence(text):
    """Up to the first full stop outside `code`."""
    tick = False
    for i, c in enumerate(text):
        if c == "`":
            tick = not tick
        elif c == "." and not tick and text[i + 1 : i + 2] in ("", " "):
            return text[: i + 1]
    return text


def released():
    """Version -> (its tag, such as "additive", and the first sentence of its
    bullet) from wit/README.md's "## Versions released"."""
    text = open(os.path.join(WIT, "README.md"), encoding="utf-8").read()
    m = re.search(r"^## Versions released\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    out = {}
    for bullet in re.split(r"^- ", m[1] if m else "", flags=re.M):
        b = re.match(r"\*\*(\d+\.\d+\.\d+)\*\*\s*(?:\(([^)]*)\))?:?\s*(.*)", " ".join(bullet.split()))
        if b:
            out[b[1]] = (b[2], first_sentence(b[3]))
    return out


def render_type(t, out):
    out += [f"#### {t['kind']} `{t['name']}`", ""] + para(t["doc"])
    if t["kind"] == "type":
        out += ["```wit", f"type {t['name']} = {t['ty']};", "```", ""]
    elif t["kind"] == "resource":
        for f in t["items"]:
            out += ["```wit", f["sig"], "```", ""] + para(f["doc"])
    else:
        head = {"record": "field | type", "variant": "case | payload"}.get(t["kind"], t["kind"].rstrip("s"))
        out += [f"| {head} | meaning |", "|" + "---|" * (head.count("|") + 2)]
        for c in t["cases"]:
            ty = [f"`{c['ty']}`" if c["ty"] else ""] if t["kind"] in ("record", "variant") else []
            out.append("| " + " | ".join([f"`{c['name']}`"] + ty + [cell(c["doc"])]) + " |")
        out.append("")


def render(pkg, version, newest):
    cmd = "python3 scripts/wit-reference.py" + ("" if version == newest else f" --version {version}")
    wit_file = f"wit/v{version}/forge.wit"
    out = [
        f"# The forge plugin contract: `{pkg['name']}`",
        "",
        f"> Generated from [`{wit_file}`](../{wit_file}) by `scripts/wit-reference.py`:",
        f"> do not edit. Regenerate with `{cmd} --out {DOC_PATH}`;",
        "> `host/tests/contract_reference.rs` fails while this file is stale.",
        "",
    ] + pkg["doc"] + ["", "Interfaces: " + ", ".join(link(i["name"]) for i in pkg["interfaces"]) + ".", ""]
    out += ["Worlds: " + ", ".join(f"[`{w['name']}`](#{slug('World ' + w['name'])})" for w in pkg["worlds"]) + ".", ""]
    for i in pkg["interfaces"]:
        out += [f"## Interface `{i['name']}`", ""] + para(i["doc"])
        for role in ("import", "export"):
            ws = [w["name"] for w in pkg["worlds"] if any(x["kind"] == role and x["name"] == i["name"] for x in w["items"])]
            if ws:
                out += [f"{role.capitalize()}ed by the world{'s' * (len(ws) > 1)} " + ", ".join(f"`{w}`" for w in ws) + ".", ""]
        for u in (x for x in i["items"] if x["kind"] == "use"):
            out += uses(u)
        types = [x for x in i["items"] if x["kind"] not in ("func", "use")]
        funcs = [x for x in i["items"] if x["kind"] == "func"]
        if types:
            out += ["### Types", ""]
            for t in types:
                render_type(t, out)
        if funcs:
            out += ["### Functions", ""]
            for f in funcs:
                out += [f"#### `{f['name']}`", "", "```wit", f["sig"], "```", ""] + para(f["doc"])
    for w in pkg["worlds"]:
        out += [f"## World `{w['name']}`", ""] + para(w["doc"])
        for u in (x for x in w["items"] if x["kind"] == "use"):
            out += uses(u)
        for role in ("import", "export"):
            items = [x for x in w["items"] if x["kind"] == role]
            if items:
                out += [f"{role.capitalize()}s:", ""]
                for x in items:
                    iface = next((i for i in pkg["interfaces"] if i["name"] == x["name"]), None)
                    about = " ".join(x["doc"]) or (first_sentence(" ".join(iface["doc"])) if iface else "")
                    out.append(f"- {link(x['name'])}" + (f": {about}" if about else ""))
                out.append("")
    out += ["## Versions this host accepts", "",
            "One folder under `wit/` per released version; the host accepts plugins built against",
            "any of them (compatibility policy and full release notes: [`wit/README.md`](../wit/README.md)).", ""]
    notes = released()
    for v in reversed(versions()):
        tag, note = notes.get(v, (None, ""))
        tags = "; ".join(t for t in ("newest" if v == newest else None, tag) if t)
        line = f"- **{v}**" + (f" ({tags})" if tags else "") + f" [`wit/v{v}/forge.wit`](../wit/v{v}/forge.wit)"
        out.append(line + (f": {note}" if note else ""))
    return "\n".join(out) + "\n"


def check_docs(pkg_docs, text):
    """Every `///` line reached the output (tables join lines, escape `|`)."""
    for line in (x.strip() for x in pkg_docs):
        if line and line not in text and line.replace("|", "\\|") not in text:
            raise WitError(f"doc comment missing from the output: {line}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", help="a version folder under wit/ (default: the newest)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--out", help="write the Markdown to this file")
    group.add_argument("--check", help="exit 1 when this file is not what --out would write")
    args = ap.parse_args()
    all_versions = versions()
    version = args.version or all_versions[-1]
    if version not in all_versions:
        sys.exit(f"no wit/v{version}/ (have {', '.join(all_versions)})")
    try:
        parser = Parser(os.path.join(WIT, f"v{version}", "forge.wit"))
        text = render(parser.parse(), version, all_versions[-1])
        check_docs(parser.docs, text)
    except WitError as e:
        sys.exit(f"wit-reference: {e}")
    if args.check:
        try:
            current = open(args.check, encoding="utf-8").read()
        except FileNotFoundError:
            current = None
        if current != text:
            again = "" if args.version is None else f" --version {version}"
            sys.exit(f"{args.check} is stale: run python3 scripts/wit-reference.py{again} --out {args.check}")
    elif args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
