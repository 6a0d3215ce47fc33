"""`run.py data versions`: each training run's data, content-addressed, and the versions trained on it."""

from __future__ import annotations

from keel.cli.console import format_table, say


def data_versions(spec) -> int:
    from keel.governance.data_versions import VERIFIED, data_root, list_data_versions
    from keel.registry import list_model_versions

    model = spec.problem.name
    root = data_root(model)
    rows = list_data_versions(root, list_model_versions(model))
    if not rows:
        say(f"no data versions for '{model}' yet ({root}); train one: python run.py train")
        return 0
    say(f"data versions of '{model}' (content-addressed Parquet under {root}):")
    say(format_table(["fingerprint (SHA-256)", "stored", "content", "MB", "model versions", "source"],
                     [(r["fingerprint"], "yes" if r["stored"] else "no",
                       "-" if r["content"] is None else r["content"] if r["content"] == VERIFIED else "NOT VERIFIED",
                       None if r["bytes"] is None else round(r["bytes"] / 1e6, 3),
                       ", ".join(f"v{v}" for v in r["model_versions"]) or "-", "; ".join(r["sources"]) or "-")
                      for r in rows]))
    changed = [r for r in rows if r["content"] not in (None, VERIFIED)]
    for row in changed:
        say(f"keel: data version {row['fingerprint']} is not the data its model versions recorded: {row['content']}")
    return 1 if changed else 0
