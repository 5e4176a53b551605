"""The base-image script takes its Debian mirror from the host's apt sources, in apt's
order and in both formats, and falls back to DEBIAN_MIRROR only when they name none."""

import os
import subprocess
from pathlib import Path

import pytest

from testsupport import ROOT

SCRIPT = ROOT / "scripts" / "containers" / "base-image.sh"


def mirror(apt_etc: Path, debian_mirror: str | None = None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "DEBIAN_MIRROR"}
    env["APT_ETC"] = str(apt_etc)
    if debian_mirror is not None:
        env["DEBIAN_MIRROR"] = debian_mirror
    answer = subprocess.run(  # noqa: S603 - the repository's own script
        [str(SCRIPT), "--mirror"], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    return answer.stdout.strip()


@pytest.fixture
def apt_etc(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_a_deb822_source_for_bookworm_skipping_disabled_and_other_suites(apt_etc: Path) -> None:
    (apt_etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://proxy.internal/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "# a mirror someone turned off\n"
        "Types: deb\n"
        "URIs: http://old.internal/debian\n"
        "Suites: bookworm\n"
        "Enabled: no\n"
        "\n"
        "Types: deb-src deb\n"
        "URIs: http://proxy.internal/debian\n"
        "  http://second.internal/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    assert mirror(apt_etc) == "http://proxy.internal/debian"


def test_a_one_line_source_with_options_after_a_repository_of_another_suite(
    apt_etc: Path,
) -> None:
    (apt_etc / "sources.list.d" / "cloud-sdk.list").write_text(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    (apt_etc / "sources.list.d" / "debian.list").write_text(
        "# deb http://commented.internal/debian bookworm main\n"
        "deb-src http://sources.internal/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/etc/apt/d.gpg] http://mirror.internal/debian bookworm main\n"
    )
    assert mirror(apt_etc) == "http://mirror.internal/debian"


def test_sources_list_comes_first_and_files_apt_ignores_are_ignored(apt_etc: Path) -> None:
    (apt_etc / "sources.list").write_text("deb http://first.internal/debian bookworm main\n")
    (apt_etc / "sources.list.d" / "a.sources.disabled").write_text(
        "Types: deb\nURIs: http://disabled.internal/debian\nSuites: bookworm\n"
    )
    (apt_etc / "sources.list.d" / "b.sources").write_text(
        "Types: deb\nURIs: http://second.internal/debian\nSuites: bookworm\n"
    )
    assert mirror(apt_etc) == "http://first.internal/debian"
    (apt_etc / "sources.list").unlink()
    assert mirror(apt_etc) == "http://second.internal/debian"


def test_the_setting_only_when_apt_names_no_mirror_of_bookworm(apt_etc: Path) -> None:
    (apt_etc / "sources.list").write_text("deb http://ubuntu.internal/ubuntu noble main\n")
    assert mirror(apt_etc, "http://setting.internal/debian") == "http://setting.internal/debian"
    assert mirror(apt_etc) == ""
    (apt_etc / "sources.list").write_text("deb http://apt.internal/debian bookworm main\n")
    assert mirror(apt_etc, "http://setting.internal/debian") == "http://apt.internal/debian"
