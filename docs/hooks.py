"""mkdocs hook: the command-line page shows the real `--help` of every subcommand.

`<!-- medresae-cli-help -->` in a page is replaced by the help texts, read
from the argparse parser itself, so the page cannot drift from the code.
"""

import argparse
import os

MARKER = "<!-- medresae-cli-help -->"


def _help_texts():
    from medresae_cli.parser import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width
    parser = build_parser()
    yield "medresae", parser.format_help()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        yield f"medresae {name}", sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                for inner, inner_parser in action.choices.items():
                    yield f"medresae {name} {inner}", inner_parser.format_help()


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    sections = [f"## `{title}`\n\n```text\n{text.rstrip()}\n```\n" for title, text in _help_texts()]
    return markdown.replace(MARKER, "\n".join(sections))
