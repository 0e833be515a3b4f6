"""The ``lectern`` command: run | ingest DIR | push SITE_DIR | gaps | eval | config-table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _checked(value: str, variable: str) -> str:
    """Checks each name before any server starts, with the variable's own message."""
    from runtime.env import REGISTRY, SettingsError

    for name in (n.strip() for n in value.split(",") if n.strip()):
        try:
            REGISTRY[variable].read({variable: name})
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _query_encoders(value: str) -> str:
    from embedding.factory import QUERY_ENCODER

    return _checked(value, QUERY_ENCODER.name)


def _embedders(value: str) -> str:
    from embedding.factory import EMBEDDER

    return _checked(value, EMBEDDER.name)


def _reranks(value: str) -> str:
    if any(n.strip() not in {"on", "off"} for n in value.split(",") if n.strip()):
        raise argparse.ArgumentTypeError("each must be on or off")
    return value


# Local paths are resolved as they are parsed, so every message names them absolutely.
def _folder(value: str) -> str:
    path = Path(value).resolve()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is not a folder")
    return str(path)


def _file(value: str) -> str:
    path = Path(value).resolve()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path} is not a file")
    return str(path)


def _resolved(value: str) -> str:
    return str(Path(value).resolve()) if value else ""


def _names(listed: str) -> list[str]:
    """A comma-separated flag's names."""
    return [name.strip() for name in listed.split(",") if name.strip()]


def _site_options() -> argparse.ArgumentParser:
    """How a site's pages map to URLs: shared by ingest and push, which read a site alike."""
    site = argparse.ArgumentParser(add_help=False)
    site.add_argument("--base-url", default="", help="a docs folder's URL (default /docs/), or a site root's "
                                                     "baseUrl (default: its config's)")
    site.add_argument("--route-base-path", default="", help="site root only: the docs plugin's routeBasePath "
                                                            "(default: its config's)")
    site.add_argument("--trailing-slash", default="", choices=["", "true", "false", "unset"],
                      help="the site's trailingSlash (default: a site root's config's)")
    site.add_argument("--include-drafts", action="store_true",
                      help="also ingest pages whose front matter says draft: true")
    site.add_argument("--last-version", default="", help="site root only: the docs plugin's lastVersion "
                      "(current or a versions.json name), for a config that computes it")
    site.add_argument("--only-include-versions", default="", help="site root only: the docs plugin's "
                      "onlyIncludeVersions, comma-separated (current or versions.json names), for a config that "
                      "computes it")
    return site


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lectern", description="Lectern: a chatbot for your Docusaurus book.",
        epilog="Settings come from LECTERN_* environment variables: see docs/configuration.md.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of the commands below; `lectern COMMAND --help` for its options")
    site = _site_options()

    run = sub.add_parser("run", help="start the whole stack on embedded defaults and ingest a book",
                         description="Start every service under a supervisor that restarts crashed ones; "
                                     "Ctrl-C stops them all.")
    run.add_argument("--book-dir", default="examples/book",
                     help="Docusaurus site root (or docs folder) to ingest at start (default: %(default)s)")
    run.add_argument("--no-ingest", action="store_true", help="do not ingest at start")

    ingest = sub.add_parser("ingest", parents=[site],
                            help="ingest a docs folder or a Docusaurus site root through a running ingest service",
                            description="Ingest a book through the ingest service at LECTERN_INGEST_ADDR; only "
                                        "changed sections are embedded again.")
    ingest.add_argument("dir", help="a docs folder, or a site root (with docusaurus.config.*: its baseUrl, "
                                    "routes, versions and locales are read from it); sent as an absolute path, "
                                    "which the ingest service must be able to read")
    ingest.add_argument("--book", default="default", help="the book's name (default: %(default)s)")
    ingest.add_argument("--manifest", default="", help="the site's build folder (or its lectern-manifest.json, "
                        "from docusaurus-plugin-lectern): routes and anchors as Docusaurus built them")
    ingest.add_argument("--dry-run", action="store_true",
                        help="report what would change without embedding or writing anything")
    ingest.add_argument("--reindex", action="store_true",
                        help="rebuild every chunk into a new version of the book, served only once complete "
                             "(needed after changing embedder)")

    push = sub.add_parser("push", parents=[site],
                          help="sync a site to a remote Lectern over HTTP, changed files only (token from "
                               "LECTERN_ADMIN_TOKEN; exit 0 ok, 1 failed files or push not finished, 2 usage "
                               "or auth)",
                          description="Send a site's changed files to a Lectern gateway, which ingests them "
                                      "without a gap for readers. The token comes from LECTERN_ADMIN_TOKEN.")
    push.add_argument("site_dir", help="a site root (with docusaurus.config.*) or a docs folder")
    push.add_argument("--url", required=True, help="the Lectern gateway, such as https://lectern.example.com")
    push.add_argument("--book", required=True, help="the book's name on the server")
    push.add_argument("--dry-run", action="store_true", help="print the plan (added/changed/deleted/unchanged)")
    push.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    push.add_argument("--yes", action="store_true", help="allow deleting pages without asking")

    gaps = sub.add_parser("gaps", help="questions answered badly, grouped into topics, with the closest sections "
                                       "(token from LECTERN_ADMIN_TOKEN)",
                          description="The gap report of a running Lectern: what readers asked that the book "
                                      "answered badly, grouped by meaning.")
    gaps.add_argument("--url", required=True, help="the Lectern gateway, such as https://lectern.example.com")
    gaps.add_argument("--days", type=int, default=30, help="days back from now (1 to 3650; default %(default)s)")
    gaps.add_argument("--book", default="", help="only this book")
    gaps.add_argument("--json", action="store_true", help="print the report as JSON")

    ev = sub.add_parser("eval", help="measure retrieval (and answer) quality on a QA set",
                        description="Ingest a docs folder into a fresh local stack and score every question "
                                    "of a QA set (JSON lines) against it.")
    ev.add_argument("--docs", default="examples/book/docs", type=_folder,
                    help="the docs folder to ingest (default: %(default)s)")
    ev.add_argument("--qa", default="examples/book/qa.jsonl", type=_file,
                    help="the QA set, one JSON object per line (default: %(default)s)")
    ev.add_argument("--modes", default="dense,keyword,hybrid",
                    help="search modes to score, comma-separated (default: %(default)s)")
    ev.add_argument("--chat", action="store_true", help="also answer every question through /v1/chat")
    ev.add_argument("--book", default="eval", help="the book name to ingest under (default: %(default)s)")
    ev.add_argument("--out", default="", type=_resolved, help="write the JSON report here")
    ev.add_argument("--min-recall5", type=float, default=0.0, help="fail below this section recall@5")
    ev.add_argument("--min-oos-accuracy", type=float, default=0.0, help="fail below this out-of-scope accuracy")
    ev.add_argument("--guard-mode", default="hybrid", help="the mode the --min-* thresholds apply to")
    ev.add_argument("--min-cited", type=float, default=0.0, help="fail below this share of answers citing gold")
    ev.add_argument("--query-encoders", default="", type=_query_encoders,
                    help="compare query encoders side by side, e.g. onnx,onnx-int8 (default: the configured one)")
    ev.add_argument("--embedders", default="", type=_embedders,
                    help="compare embedders side by side, each on its own index, e.g. local,bge-small")
    ev.add_argument("--rerank", default="", type=_reranks,
                    help="compare reranking off and on side by side: off,on (default: the configured one)")

    sub.add_parser("config-table", help="rewrite the configuration table in docs/configuration.md from the code",
                   description="Regenerate the table of environment variables from the settings registry.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config-table":
        from cli.config_table import TABLE_FILE, rewrite

        print(f"{TABLE_FILE} {'updated' if rewrite() else 'already current'}")
        return 0
    if args.command == "eval":
        from evaluation.cli_eval import eval_command

        return eval_command(args.docs, args.qa, args.modes, args.chat, args.book, args.out, args.min_recall5,
                            args.min_oos_accuracy, args.min_cited, args.guard_mode, args.query_encoders,
                            args.embedders, args.rerank)
    if args.command == "gaps":
        from cli.gaps import gaps_command

        return gaps_command(args.url, args.days, args.book, args.json)
    if args.command == "push":
        from cli.push import push_command

        return push_command(args.site_dir, args.url, args.book, args.dry_run, args.json, args.yes, {
            "base_url": args.base_url, "route_base_path": args.route_base_path,
            "trailing_slash": args.trailing_slash, "include_drafts": args.include_drafts,
            "last_version": args.last_version, "only_include_versions": _names(args.only_include_versions)})
    if args.command == "run":
        from cli.supervisor import run_stack

        return run_stack(args.book_dir, ingest=not args.no_ingest)
    from cli.ingest import ingest_command

    return ingest_command(args.dir, args.book, args.base_url, args.dry_run, args.reindex, args.include_drafts,
                          args.route_base_path, args.trailing_slash, args.manifest, args.last_version,
                          _names(args.only_include_versions))


if __name__ == "__main__":
    sys.exit(main())
