"""
MkDocs hook: links written relative to their file in the repository, as GitHub resolves them, work on the site.

- The repository's ``README.md`` and ``RESULTS.md`` become pages of the site (``readme.md``: MkDocs would take a
  ``README.md`` for the home page, ``RESULTS.md``).
- Any other file of the repository that a page links to (``../../examples/iql_pendulum.py`` in
  ``docs/algorithms/iql.md``) is served by the site at its repository path, as it is.
- A link from a page to either, or from ``README.md``/``RESULTS.md`` into ``docs/`` (``docs/results/x.png``), is
  rewritten to the site's relative path.

A link to a file that does not exist is left as written, so that ``mkdocs build --strict`` names it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
#: repository files served as pages of the site: repository path -> site path
PAGES = {"README.md": "readme.md", "RESULTS.md": "RESULTS.md"}
#: site path -> repository path
PAGE_SOURCES = {site: repository for repository, site in PAGES.items()}
#: a Markdown inline link or image: ``](target)`` or ``](target#anchor)``
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")
#: a reST cross-reference of the docstrings (SB3's style), as Markdown renders it: ``:class:<code>~a.b.C</code>``
REST_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|obj|exc):<code>(~?)([\w.]+)</code>")


def _in_repository(source: str, docs: Path) -> Path:
    """Where the page ``source`` (a site path) lies in the repository."""
    return ROOT / PAGE_SOURCES[source] if source in PAGE_SOURCES else docs / source


def _site_path(page: Path, target: str, docs: Path) -> str | None:
    """The site path of what ``target``, written in the repository file ``page``, names; ``None``: not served."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    resolved = (page.parent / target).resolve()
    if resolved.is_relative_to(docs):
        return resolved.relative_to(docs).as_posix()
    if resolved.is_relative_to(ROOT) and resolved.is_file() and ".git" not in resolved.relative_to(ROOT).parts:
        in_repository = resolved.relative_to(ROOT).as_posix()
        return PAGES.get(in_repository, in_repository)
    return None


def on_files(files: Files, config: Any) -> Files:
    docs = Path(config["docs_dir"]).resolve()
    for repository, site in PAGES.items():
        files.append(File.generated(config, site, abs_src_path=str(ROOT / repository)))
    for page in list(files.documentation_pages()):
        source = _in_repository(page.src_uri, docs)
        for _, target, _, _ in LINK.findall(source.read_text()):
            served = _site_path(source, target, docs)
            if served is not None and not (docs / served).exists() and files.get_file_from_path(served) is None:
                files.append(File.generated(config, served, abs_src_path=str(ROOT / served)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    docs = Path(config["docs_dir"]).resolve()
    source = page.file.src_uri

    def site_link(match: re.Match[str]) -> str:
        served = _site_path(_in_repository(source, docs), match.group(2), docs)
        if served is None or files.get_file_from_path(served) is None:
            return match.group(0)
        relative = Path(os.path.relpath(served, os.path.dirname(source) or ".")).as_posix()
        return f"{match.group(1)}{relative}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(site_link, markdown)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Docstrings' ``:class:`~a.b.C``` shown as ``C`` (``a.b.C`` without the ``~``), as Sphinx shows them."""
    return REST_ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)
