"""
MkDocs hook: the repository's Markdown files that the documentation links to (``README.md``, ``RESULTS.md``)
become pages of the site under the same names, and a link written relative to its file in the repository, as
GitHub resolves it (``../RESULTS.md`` in ``docs/design.md``, ``docs/results/x.png`` in ``RESULTS.md``), points to
that page or file of the site. A link to anything else outside ``docs/`` is left as written, so that
``mkdocs build --strict`` names it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
#: repository files served as pages of the site, at the same path
PAGES = ("README.md", "RESULTS.md")
#: a Markdown inline link or image: ``](target)`` or ``](target#anchor)``
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def on_files(files: Files, config: Any) -> Files:
    for name in PAGES:
        files.append(File.generated(config, name, abs_src_path=str(ROOT / name)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    docs = Path(config["docs_dir"]).resolve()
    source = page.file.src_uri
    in_repository = (ROOT / source) if source in PAGES else (docs / source)

    def site_link(match: re.Match[str]) -> str:
        target = match.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        resolved = (in_repository.parent / target).resolve()
        if resolved.is_relative_to(docs):
            on_site = resolved.relative_to(docs).as_posix()
        elif resolved.is_relative_to(ROOT) and resolved.relative_to(ROOT).as_posix() in PAGES:
            on_site = resolved.relative_to(ROOT).as_posix()
        else:
            return match.group(0)
        relative = os.path.relpath(on_site, os.path.dirname(source) or ".")
        return f"{match.group(1)}{Path(relative).as_posix()}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(site_link, markdown)


#: a reST cross-reference of the docstrings (SB3's style), as Markdown renders it: ``:class:<code>~a.b.C</code>``
REST_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|obj|exc):<code>(~?)([\w.]+)</code>")


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Docstrings' ``:class:`~a.b.C``` shown as ``C`` (``a.b.C`` without the ``~``), as Sphinx shows them."""
    return REST_ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)
