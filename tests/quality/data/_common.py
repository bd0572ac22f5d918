"""Helpers shared by the make_<set>.py scripts: read files of a pinned commit of a git clone,
write a deterministic gzip JSONL, and count what was written."""
import collections
import gzip
import io
import json
import subprocess


def git_show(repo, commit, path):
    """Bytes of `path` at `commit` in the clone (bare or not) at `repo`."""
    return subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], check=True,
                          capture_output=True).stdout


def check_commit(repo, commit):
    subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{commit}^{{commit}}"], check=True)


def write_events(rows, path):
    """rows: dicts with productId, text, label. gzip without name or mtime, so reruns are byte-identical."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for r in rows:
            gz.write((json.dumps({"productId": r["productId"], "text": r["text"], "label": r["label"]},
                                 ensure_ascii=False) + "\n").encode("utf-8"))
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def summary(rows):
    per = collections.OrderedDict()
    for r in rows:
        per.setdefault(r["productId"], collections.Counter())[r["label"]] += 1
    lines = [f"| product | labels | texts | smallest / largest label |", "| --- | ---: | ---: | --- |"]
    for p, c in per.items():
        lines.append(f"| {p} | {len(c)} | {sum(c.values())} | {min(c.values())} / {max(c.values())} |")
    lines.append(f"| **all** | {sum(len(c) for c in per.values())} | {len(rows)} | |")
    return "\n".join(lines)
