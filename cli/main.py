"""lectern run | lectern ingest DIR | lectern config-table"""

from __future__ import annotations

import argparse
import sys


def _query_encoders(value: str) -> str:
    """Checks each name before any server starts, with the variable's own message."""
    from embedding.factory import QUERY_ENCODER
    from runtime.env import SettingsError

    for name in (n.strip() for n in value.split(",") if n.strip()):
        try:
            QUERY_ENCODER.read({QUERY_ENCODER.name: name})
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lectern", description="Lectern: a chatbot for your Docusaurus book.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the whole stack on embedded defaults and ingest a book")
    run.add_argument("--book-dir", default="examples/book/docs", help="docs folder to ingest at start")
    run.add_argument("--no-ingest", action="store_true", help="do not ingest at start")

    ingest = sub.add_parser("ingest", help="ingest a docs folder through a running ingest service")
    ingest.add_argument("dir")
    ingest.add_argument("--book", default="default")
    ingest.add_argument("--base-url", default="/docs/")
    ingest.add_argument("--dry-run", action="store_true")
    ingest.add_argument("--reindex", action="store_true")
    ingest.add_argument("--include-drafts", action="store_true")

    ev = sub.add_parser("eval", help="measure retrieval (and answer) quality on a QA set")
    ev.add_argument("--docs", default="examples/book/docs")
    ev.add_argument("--qa", default="examples/book/qa.jsonl")
    ev.add_argument("--modes", default="dense,keyword,hybrid")
    ev.add_argument("--chat", action="store_true", help="also answer every question through /v1/chat")
    ev.add_argument("--book", default="eval")
    ev.add_argument("--out", default="", help="write the JSON report here")
    ev.add_argument("--min-recall5", type=float, default=0.0, help="fail below this section recall@5")
    ev.add_argument("--min-oos-accuracy", type=float, default=0.0, help="fail below this out-of-scope accuracy")
    ev.add_argument("--guard-mode", default="hybrid", help="the mode the --min-* thresholds apply to")
    ev.add_argument("--min-cited", type=float, default=0.0, help="fail below this share of answers citing gold")
    ev.add_argument("--query-encoders", default="", type=_query_encoders,
                    help="compare query encoders side by side, e.g. onnx,onnx-int8 (default: the configured one)")

    sub.add_parser("config-table", help="rewrite the README's configuration table from the code")

    args = parser.parse_args(argv)
    if args.command == "config-table":
        from pathlib import Path

        from cli.config_table import rewrite

        print("README.md updated" if rewrite(Path("README.md")) else "README.md already current")
        return 0
    if args.command == "eval":
        from evaluation.cli_eval import eval_command

        return eval_command(args.docs, args.qa, args.modes, args.chat, args.book, args.out, args.min_recall5,
                            args.min_oos_accuracy, args.min_cited, args.guard_mode, args.query_encoders)
    if args.command == "run":
        from cli.supervisor import run_stack

        return run_stack(args.book_dir, ingest=not args.no_ingest)
    from cli.ingest import ingest_command

    return ingest_command(args.dir, args.book, args.base_url, args.dry_run, args.reindex, args.include_drafts)


if __name__ == "__main__":
    sys.exit(main())
