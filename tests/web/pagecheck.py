"""What every workspace page must pass in the browser tests, checked where the page stands:
axe-core (no serious or critical violation), no horizontal overflow, touch targets of at least
44 x 44 CSS pixels; and a full-page screenshot kept under ``var/screenshots/`` for people to look at.

axe-core comes from npm, pinned by ``tests/web/axe/package-lock.json`` and installed with ``npm ci``
into ``tests/web/axe/node_modules`` (gitignored) the first time it is needed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"
MIN_TARGET = 44

# what a finger taps: buttons, links styled or placed as controls, form fields, toggles
_TARGETS = """() => {
  const sel = 'button, .button, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select,'
    + ' textarea, nav a, label.check, summary, .back a';
  return [...document.querySelectorAll(sel)]
    .filter(el => el.offsetParent !== null)
    .map(el => { const r = el.getBoundingClientRect();
      const label = (el.textContent || el.name || '').trim().slice(0, 30);
      return {what: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' + label,
              w: Math.round(r.width), h: Math.round(r.height)}; })
}"""


def axe_source() -> str:
    """axe-core's browser build, installed from the committed lock file when missing."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed for the page checks (axe-core): apt-get install npm")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AXE_DIR, check=True, capture_output=True)
    return AXE_JS.read_text()


@dataclass
class PageChecks:
    """Runs the checks on each page visited; ``problems`` collects what failed, by page."""

    folder: str
    problems: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    _axe: str = ""

    async def visit(self, page: Page, name: str) -> None:
        n = len(self.seen) + 1
        self.seen.append(name)
        out = SCREENSHOTS / self.folder
        out.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        await page.screenshot(path=str(out / f"{n:02d}-{slug}.png"), full_page=True)
        self.problems += [f"{name}: {p}" for p in await self._check(page)]

    async def _check(self, page: Page) -> list[str]:
        problems: list[str] = []
        width = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            problems.append(f"horizontal overflow: {width[0]} px wide in a {width[1]} px window")
        for t in await page.evaluate(_TARGETS):
            if t["h"] < MIN_TARGET or t["w"] < MIN_TARGET:
                problems.append(f"touch target {t['what']!r} is {t['w']}x{t['h']} px")
        if not self._axe:
            self._axe = axe_source()
        # evaluated through the DevTools protocol, which the page's CSP does not govern
        await page.evaluate(self._axe + "\n;true")
        result: dict[str, Any] = await page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        for v in result["violations"]:
            if v.get("impact") in ("serious", "critical"):
                nodes = [" ".join(n.get("target", [])) for n in v.get("nodes", [])][:3]
                problems.append(f"axe {v['id']} ({v['impact']}): {v['help']} at {json.dumps(nodes)}")
        return problems
