"""Docusaurus's npm2yarn remark plugin, read without Node: a code block whose meta is exactly
`npm2yarn` (```` ```bash npm2yarn ````) is shown as tabs, one per package manager, each holding
the command converted by the npm package `npm-to-yarn`.

The plugin's rules are @docusaurus/remark-plugin-npm2yarn 3.10's (`src/index.ts`): the first tab
is the block itself, valued "npm"; the converters are labelled "Yarn", "pnpm" and "Bun"; the
tabs' code keeps the block's language and drops its meta. The default converters are those of
the site's version (default_converters). The conversions are those of the npm-to-yarn the site
builds with (release): 3.2.0's (`dist/npm-to-yarn.mjs`) from Docusaurus 3.6, 2.2.1's before (it
leaves `npx` and `npm create` alone and keeps `@latest`), and before 2.4 those of 1.x, which
rewrites the command's text rather than its arguments, converts `npm i` to nothing and has a Yarn
tab only. Quirks are kept: every "npm" in the block is converted with what follows it up to a `&`
or the line's end, so "pnpm" and "my-npm-app" are read too. tests/test_docusaurus_build.py
compares this port with each of those npm packages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

PLUGIN = "@docusaurus/remark-plugin-npm2yarn"
META = "npm2yarn"  # the plugin converts a block whose meta is exactly this
DEFAULT_CONVERTERS = ("yarn", "pnpm", "bun")  # since Docusaurus 3.8
KNOWN_CONVERTERS = frozenset(DEFAULT_CONVERTERS)
_LABELS = {"yarn": "Yarn", "bun": "Bun"}  # the others show their value (getLabelForConverter)
_NOT_CONVERTED = "\n# couldn't auto-convert command"
_UNDEFINED = "undefined"  # what JavaScript prints for a command the pattern did not capture


def default_converters(docusaurus: tuple[int, int]) -> tuple[str, ...]:
    """The plugin's converters when its options name none, by the site's (major, minor): Bun since
    3.8 (#10953), pnpm since 2.4 (#8690); before, a Yarn tab only."""
    if docusaurus < (2, 4):
        return ("yarn",)
    return DEFAULT_CONVERTERS if docusaurus >= (3, 8) else ("yarn", "pnpm")

_UNCHANGED = ("test", "login", "logout", "link", "unlink", "publish", "cache", "start", "stop")
_YARN_COMMANDS = (
    "init", "run", "add", "audit", "autoclean", "bin", "check", "config", "create", "dedupe",
    "generate-lock-entry", "global", "help", "import", "info", "install", "licenses", "list",
    "lockfile", "outdated", "owner", "pack", "policies", "prune", "remove", "self-update", "tag",
    "team", "upgrade", "upgrade-interactive", "version", "versions", "why", "workspace", "workspaces")
_EXECUTORS = ("npx", "yarn dlx", "pnpm dlx", "bun x", "nubx")  # detected when they lead the block
_EXECUTOR_FOR = {"npm": "npx", "yarn": "yarn dlx", "pnpm": "pnpm dlx", "bun": "bun x"}
_COMMAND = re.compile(r"npm(?: +([^&\n\r]*))?")

Release = tuple[int, int]  # (major, minor) of the npm-to-yarn whose conversions are followed
LATEST: Release = (3, 2)
# The newest release of each major, which the plugin's range (^1.0.1 before Docusaurus 2.4, ^2.0.0
# before 3.6, ^3.0.0 since) installs when no lock file pins another; 1.0.x converts less than 1.2+.
_NEWEST = {1: (1, 3), 2: (2, 2), 3: LATEST}
# From npm-to-yarn 3: a leading executor (npx) and `npm create` are converted, and `@latest` dropped.
_V3: Release = (3, 0)

Args = list[str]


# A converted command is about as long as npm's ("npm install -D x" / "yarn add --dev x"); each "npm"
# it cannot convert becomes a line of comment, so "npmnpmnpm…" would grow fifteen-fold per tab. A tab
# longer than this is not read: what ingest stores stays a small multiple of the page.
MAX_GROWTH = 2
GROWTH_SLACK = 1024  # characters: a short block may grow by a comment or two


def release(docusaurus: tuple[int, int], locked: Sequence[tuple[int, int]] = ()) -> Release:
    """The npm-to-yarn the site's plugin converts with: of the (major, minor) versions its lock
    file holds, the one of the major its Docusaurus asks for, else that major's newest."""
    major = 1 if docusaurus < (2, 4) else 2 if docusaurus < (3, 6) else 3
    pinned = [v for v in locked if v[0] == major]
    if not pinned:
        return _NEWEST[major]
    return (1, 0) if major == 1 and pinned[0] < (1, 2) else _NEWEST[major]


def tabs(code: str, converters: tuple[str, ...], npm_to_yarn: Release = LATEST) -> list[tuple[str, str]]:
    """The tabs the plugin makes of a block: (button label, code), npm's first."""
    converted = ((_LABELS.get(c, c), convert(code, c, npm_to_yarn)) for c in converters if c in KNOWN_CONVERTERS)
    return [("npm", code), *(t for t in converted if len(t[1]) <= MAX_GROWTH * len(code) + GROWTH_SLACK)]


def convert(code: str, to: str, npm_to_yarn: Release = LATEST) -> str:
    """npm-to-yarn's ``convert(code, to)`` for to = yarn, pnpm or bun, as ``npm_to_yarn`` has it."""
    if npm_to_yarn[0] == 1:  # 1.x converts every command to Yarn's, whatever ``to`` is
        return _COMMAND.sub(lambda m: _to_yarn_1(m.group(1), npm_to_yarn), code)
    if npm_to_yarn >= _V3:
        trimmed = code.lstrip()
        executor = next((e for e in _EXECUTORS if trimmed == e or trimmed.startswith(e + " ")), None)
        if executor is not None:
            return code.replace(executor, _EXECUTOR_FOR[to], 1)
    one = _CONVERTERS[to]
    return _COMMAND.sub(lambda m: one(m.group(1), npm_to_yarn), code)


def _parse(command: str) -> Args:
    """npm-to-yarn's argument splitter: spaces split, except inside quotes; a backslash escapes."""
    args: Args = []
    last_quote = ""
    escaped = False
    part = ""
    for char in command:
        if char == "\\":
            part += char
            escaped = True
            continue
        if char == " " and not last_quote:
            args.append(part)
            part = ""
        elif not escaped and char in "\"'":
            part += char
            if char == last_quote:
                last_quote = ""
            elif not last_quote:
                last_quote = char
        else:
            part += char
        escaped = False
    args.append(part)
    return args


def _args(command: str | None) -> Args:
    args = _parse((command or "").strip())
    if "--" in args:
        args.remove("--")
    return args


def _joined(args: Args) -> str:
    return " ".join(a for a in args if a)


def _failed(command: str | None) -> str:
    return f"npm {_UNDEFINED if command is None else command}{_NOT_CONVERTED}"


# --- yarn -----------------------------------------------------------------------------------

_YARN_FLAGS = {"--save-dev": "--dev", "-D": "--dev", "--save-prod": "--production", "-P": "--production",
               "--no-package-lock": "--no-lockfile", "--save-optional": "--optional", "-O": "--optional",
               "--save-exact": "--exact", "-E": "--exact", "--save": "", "-S": "", "--global": "", "-g": ""}


def _yarn_install_args(args: Args) -> Args:
    if "--global" in args or "-g" in args:
        args.insert(0, "global")
    return [_YARN_FLAGS.get(a, a) for a in args]


def _yarn_install(args: Args) -> Args:
    if len(args) == 1:
        return ["install"]
    args[0] = "add"
    return _yarn_install_args(args)


def _yarn_remove(args: Args) -> Args:
    args[0] = "remove"
    return _yarn_install_args(args)


def _yarn_run(args: Args) -> Args:
    if len(args) > 1 and args[1] and args[1] not in _UNCHANGED and args[1] not in _YARN_COMMANDS:
        del args[0]
    return args


def _yarn_list(args: Args) -> Args:
    args[0] = "list"
    packages: Args = []
    for item in args[1:]:
        if item.startswith("-"):
            break
        packages.append(item)
    if packages:
        args[1:1 + len(packages)] = ["--pattern", '"' + "|".join(packages) + '"']
    return args


def _create(args: Args, npm_to_yarn: Release) -> Args:
    if len(args) > 1 and args[1] and not args[1].startswith("-"):
        args[0] = "create"
        if npm_to_yarn >= _V3 and (latest := re.search(r"(.+)@latest", args[1])):
            args[1] = latest.group(1)
    return [a for a in args if a != "--scope"]


def _renamed(name: str) -> Callable[[Args], Args]:
    def rename(args: Args) -> Args:
        args[0] = name
        return args
    return rename


def _pack(destination: str) -> Callable[[Args], Args]:
    return lambda args: [re.sub(r"^--pack-destination[\s=]", destination, a, count=1)
                         if a.startswith("--pack-destination") else a for a in args]


def _rebuild_as_add(args: Args) -> Args:
    args[0] = "add"
    return [*args, "--force"]


_VERSION_FLAGS = {"major": "--major", "minor": "--minor", "patch": "--patch"}

_TO_YARN: dict[str, Callable[[Args], Args]] = {
    **dict.fromkeys(("install", "i"), _yarn_install),
    **dict.fromkeys(("uninstall", "un", "remove", "r", "rm"), _yarn_remove),
    "version": lambda args: [_VERSION_FLAGS.get(a, a) for a in args],
    **dict.fromkeys(("rb", "rebuild"), _rebuild_as_add),
    "run": _yarn_run,
    "exec": lambda args: _yarn_run(_renamed("run")(args)),
    **dict.fromkeys(("ls", "list"), _yarn_list),
    "ln": _renamed("link"), "t": _renamed("test"), "tst": _renamed("test"), "outdated": _renamed("outdated"),
    "pack": _pack("--filename "),
}


def _initialises(args: Args, npm_to_yarn: Release) -> bool:
    return args[0] == "init" or (args[0] == "create" and npm_to_yarn >= _V3)


def _to_yarn(command: str | None, npm_to_yarn: Release) -> str:
    args = _args(command)
    if args[0] in _UNCHANGED:
        return "yarn " + _joined(args)
    if _initialises(args, npm_to_yarn):
        return "yarn " + _joined(_create(args, npm_to_yarn))
    if args[0] in _TO_YARN:
        return "yarn " + _joined(_TO_YARN[args[0]](args))
    return _failed(command)


# --- pnpm -----------------------------------------------------------------------------------

_PNPM_FLAGS = {"--save": "", "-S": "", "--no-package-lock": "--frozen-lockfile"}


def _pnpm_install(args: Args) -> Args:
    if len(args) > 1 and sum(not a.startswith("-") for a in args) > 1:
        args[0] = "add"
    return [_PNPM_FLAGS.get(a, a) for a in args]


def _pnpm_remove(args: Args) -> Args:
    args[0] = "remove"
    return [_PNPM_FLAGS.get(a, a) for a in args]


def _filtered(args: Args) -> Args:
    """pnpm's --filter for the packages a command names (convertFilterArg)."""
    if len(args) > 1:
        names = [a for i, a in enumerate(args) if i != 0 and not a.startswith("-")]
        if names:
            args = [a for i, a in enumerate(args) if i == 0 or a.startswith("-")]
            args += ["--filter", " ".join(names)]
    return args


_PNPM_LIST_FLAGS = {"--production": "--prod", "--development": "--dev"}


def _pnpm_list(args: Args) -> Args:
    return [f"--depth {a.split('=')[1]}" if a.startswith("--depth=") else _PNPM_LIST_FLAGS.get(a, a) for a in args]


_TO_PNPM: dict[str, Callable[[Args], Args]] = {
    **dict.fromkeys(("install", "i"), _pnpm_install),
    **dict.fromkeys(("uninstall", "un", "remove", "r", "rm"), _pnpm_remove),
    **dict.fromkeys(("rb", "rebuild"), lambda args: _filtered(_renamed("rebuild")(args))),
    "run": _renamed("run"), "exec": _renamed("exec"),
    **dict.fromkeys(("ls", "list"), _pnpm_list),
    "ln": _renamed("link"), "t": _renamed("test"), "test": _renamed("test"), "tst": _renamed("test"),
    "start": _renamed("start"), "link": _renamed("link"), "unlink": _filtered, "outdated": _renamed("outdated"),
    "pack": _pack("--pack-destination "),
}


def _to_pnpm(command: str | None, npm_to_yarn: Release) -> str:
    args = _args(command)
    if _initialises(args, npm_to_yarn):
        return "pnpm " + _joined(_create(args, npm_to_yarn))
    if args[0] in _TO_PNPM:
        return "pnpm " + _joined(_TO_PNPM[args[0]](args))
    return _failed(command)


# --- bun ------------------------------------------------------------------------------------

_BUN_FLAGS = {"--save-dev": "--dev", "--development": "--dev", "-D": "--dev", "--save-prod": "--production",
              "-P": "--production", "--no-package-lock": "--no-save", "--save-optional": "--optional",
              "-O": "--optional", "--save-exact": "--exact", "-E": "--exact", "--save": "", "-S": "",
              "--global": "--global", "-g": "--global"}


def _bun_flags(args: Args) -> Args:
    return [_BUN_FLAGS.get(a, a) for a in args]


def _to_bun(command: str | None, npm_to_yarn: Release) -> str:
    args = _args(command)
    cmd = "bun"
    first = args[0]
    if first in ("install", "i"):
        args = ["install"] if len(args) == 1 else ["add", *args[1:]]
        args = _bun_flags(args)
    elif first in ("uninstall", "un", "remove", "r", "rm"):
        args = _bun_flags(["remove", *args[1:]])
    elif first == "cache":
        if len(args) > 1 and args[1] == "clean":
            args = ["pm", "cache", "rm", *args[2:]]
        else:
            cmd = "npm"
    elif first in ("rebuild", "rb"):
        args = ["add", *args[1:], "--force"]
    elif first in ("list", "ls"):
        args = ["pm", "ls", *_bun_flags(args)[1:]]
    elif first in ("init", "create"):
        if len(args) > 1 and args[1]:
            if args[1].startswith("@"):
                cmd = "bunx"
                args = [args[1].replace("/", "/create-", 1), *args[2:]]
            elif not args[1].startswith("-"):
                cmd = "bunx"
                name = args[1].replace("@latest", "", 1) if npm_to_yarn >= _V3 else args[1]
                args = ["create-" + name, *args[2:]]
            else:
                args[0] = "init"
    elif first in ("link", "ln"):
        args = ["link", *_bun_flags(args)[1:]]
    elif first in ("test", "t", "tst"):
        args = ["run", "test", *args[1:]]
    elif first == "exec":
        cmd = "bunx"
        args = args[1:]
    elif first not in ("run", "stop", "start", "unlink"):
        cmd = "npm"  # no bun equivalent: the command stays npm's
    shown = " ".join(a for a in args if a and a != "--")
    return f"{cmd} {shown}{_NOT_CONVERTED if cmd == 'npm' else ''}".replace("=", " ", 1)


_CONVERTERS: dict[str, Callable[[str | None, Release], str]] = {"yarn": _to_yarn, "pnpm": _to_pnpm, "bun": _to_bun}


# --- npm-to-yarn 1.x: Yarn only, by rewriting the command's text --------------------------------

_UNCHANGED_1 = ("test", "login", "logout", "link", "publish", "cache")
_UNCHANGED_1_0 = ("init", "run", *_UNCHANGED_1)  # 1.0.x had no conversion for these
_YARN_COMMANDS_1 = (*_YARN_COMMANDS, "unlink")
_WORD = re.compile(r"\w+", re.ASCII)
# " -g" or " --global" at the very end (JavaScript's [^\b] is any character but a backspace).
_GLOBAL_1 = re.compile(r" -(?:-global|g)(?![^\x08])")
_SAVE_1 = re.compile(r"\s*--save")


def _global_1(ret: str) -> str:
    if _GLOBAL_1.search(ret):
        ret = "global " + _GLOBAL_1.sub("", ret, count=1)
    return ret


def _install_1(command: str, release: Release) -> str:
    if re.fullmatch(r"install *", command):
        return "install"
    ret = command.replace("install", "add", 1).replace("--save-dev", "--dev", 1)
    if release >= (1, 2):
        ret = ret.replace("--save-exact", "--exact", 1).replace("--save-optional", "--optional", 1)
        ret = _SAVE_1.sub("", ret, count=1).replace("--no-package-lock", "--no-lockfile", 1)
    else:  # "--save" goes first, so "--save-exact" is left as "-exact"
        ret = _SAVE_1.sub("", ret, count=1).replace("--no-package-lock", "--no-lockfile", 1)
        ret = ret.replace("--save-optional", "--optional", 1).replace("--save-exact", "--exact", 1)
    return _global_1(ret)


def _uninstall_1(command: str, release: Release) -> str:
    ret = command.replace("uninstall", "remove", 1).replace("--save-dev", "--dev", 1)
    return _global_1(_SAVE_1.sub("", ret, count=1).replace("--no-package-lock", "--no-lockfile", 1))


def _run_1(command: str, release: Release) -> str:
    found = re.match(r"run\s?(\S+)?(\s--\s--)?(.*)\Z", command)
    if found is None:
        return command
    script, dashes, rest = found.groups()
    shown = script if script and script not in _UNCHANGED_1 and script not in _YARN_COMMANDS_1 \
        else "run " + (script or "")
    return shown + (re.sub(r"^\s--", "", dashes) if dashes else "") + (rest or "")


def _list_1(command: str, release: Release) -> str:
    found = re.match(r"(ls|list)(.*)\Z", command)
    if found is None:
        return command
    if not found.group(2):
        return "list"
    shown, ended = "list", False
    packages: list[str] = []
    for item in (i for i in found.group(2).split(" ") if i):
        if ended:
            shown += " " + item
        elif item.startswith("-"):
            shown += ' --pattern "' + "|".join(packages) + '" ' + item
            packages, ended = [], True
        else:
            packages.append(item)
    return shown + (' --pattern "' + "|".join(packages) + '"' if packages else "")


def _init_1(command: str, release: Release) -> str:
    if re.match(r"init (?!-)", command):
        return command.replace("init", "create", 1)
    return command.replace(" --scope", "", 1)


_TO_YARN_1: dict[str, Callable[[str, Release], str]] = {
    "install": _install_1, "uninstall": _uninstall_1,
    "version": lambda c, _: re.sub(r"(major|minor|patch)", r"--\1", c, count=1),
    "rebuild": lambda c, _: c.replace("rebuild", "add --force", 1),
}
_TO_YARN_1_2 = {**_TO_YARN_1, "run": _run_1, "ls": _list_1, "list": _list_1, "init": _init_1}


def _to_yarn_1(command: str | None, release: Release) -> str:
    command = (command or "").strip()
    first = found.group() if (found := _WORD.search(command)) else ""
    table = _TO_YARN_1_2 if release >= (1, 2) else _TO_YARN_1
    if first in (_UNCHANGED_1 if release >= (1, 2) else _UNCHANGED_1_0):
        return "yarn " + command
    if first in table:
        return "yarn " + table[first](command, release)
    return "yarn " + command + _NOT_CONVERTED
