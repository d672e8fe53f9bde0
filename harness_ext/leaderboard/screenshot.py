"""A PNG of leaderboard.html as headless Chromium renders it (for the README); nothing when Chromium is absent."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness_ext.io import atomic_output

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1600, 1100), timeout: float = 120) -> Path | None:
    """Render ``page`` (a local HTML file) to ``png``; None when no Chromium is installed."""
    if not Path(page).is_file():
        raise RuntimeError(f"no page to render: {page} does not exist")
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        shot = Path(scratch) / "shot.png"
        command = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--user-data-dir={scratch}/profile", f"--window-size={size[0]},{size[1]}",
                   f"--screenshot={shot}", Path(page).resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{browser} did not render {page} within {timeout:g} s") from None
        if done.returncode != 0 or not shot.is_file():
            raise RuntimeError(f"{browser} could not render {page}: {done.stderr.strip()[-500:]}")
        with atomic_output(png, "wb") as stream:
            stream.write(shot.read_bytes())
    return Path(png)
