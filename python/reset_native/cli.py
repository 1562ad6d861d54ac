"""reset-native: NVFP4 decoding, ReSET sampling and the GradPIM/DDR4 memory model from the command line.

Each engine module adds its own subcommands through ``register_cli(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Callable, List, Optional


def _cmd_info(args: argparse.Namespace) -> int:
    import reset_native

    info = reset_native.build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:14s} {value}")
    return 0


def _register_info(sub) -> None:
    p = sub.add_parser("info", help="print what this build contains (build_info)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_info)


# Each engine module that has subcommands defines ``register_cli(subparsers)``; modules must keep
# heavy imports (torch, transformers) inside their command functions so `reset-native info` stays fast.
_ENGINE_MODULES: List[str] = [
    "reset_native.nvfp4",
    "reset_native.sampler",
    "reset_native.dram",
    "reset_native.pim",
    "reset_native.integrations.hf",
]


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="reset-native", description=__doc__)
    parser.add_argument("--version", action="version", version=f"reset_native {__version__}")
    parser.add_argument("--cmakedir", action="store_true",
                        help="print the directory holding reset_nativeConfig.cmake and exit")
    sub = parser.add_subparsers(dest="command", metavar="command")
    _register_info(sub)
    for module_name in _ENGINE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # engine not built yet: no commands, anything else is a bug
                continue
            raise
        register: Optional[Callable] = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmakedir:
        import reset_native

        print(reset_native.cmake_dir())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, NotImplementedError) as exc:
        print(f"reset-native: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
