"""mkdocs hooks: the real `--help` on the command-line page; tutorial pages offer their script, without C++ logs.

`<!-- medresae-cli-help -->` in a page is replaced by the help texts, read
from the argparse parser itself, so the page cannot drift from the code.

The tutorials run in Jupyter kernels started by this process. TensorFlow's
C++ libraries write log lines straight to file descriptor 2, some before
any logging setting is read; with `capture_fd_output` off, the kernels send
them to the build's terminal instead of the pages. Python warnings and
errors still appear on the pages.
"""

import argparse
import atexit
import os
import shutil
import tempfile

MARKER = "<!-- medresae-cli-help -->"


def on_startup(command, dirty):
    ipython_dir = tempfile.mkdtemp(prefix="medresae-docs-ipython-")
    atexit.register(shutil.rmtree, ipython_dir, ignore_errors=True)
    os.makedirs(os.path.join(ipython_dir, "profile_default"))
    with open(os.path.join(ipython_dir, "profile_default", "ipython_kernel_config.py"), "w") as f:
        f.write("c.IPKernelApp.capture_fd_output = False\n")
    os.environ["IPYTHONDIR"] = ipython_dir
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _help_texts():
    from medresae_cli.parser import build_parser

    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal width; 80 columns fit the page
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


def on_page_content(html, page, config, files):
    # mkdocs-jupyter (include_source) copies each tutorial's .py next to its page; link to it.
    source = page.file.src_uri
    if not (source.startswith("tutorials/") and source.endswith(".py")):
        return html
    name = os.path.basename(source)
    link = (f'<p><a href="{name}" download>Download this tutorial: {name}</a> '
            f'(run it with <code>python {name}</code>; <code>CI=true</code> gives the small sizes used here)</p>')
    return link + html

