"""aisdp-log under a non-UTF-8 locale (cp1252, as on many Windows machines; generated on Linux
by `.ci/run` with `localedef -i en_US -f CP1252 en_US.CP1252`): commit subjects and authors
with Ł and Ő, and an SSH key in a folder whose name is not cp1252, through `rerun`,
`review --sign` and `verify`. Each command is a real process, since Python fixes its locale
encodings at start-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders import git
from signoffs import allow, make_key
from test_guard import tiny_rerun_project
from test_review import make_project

pytestmark = pytest.mark.slow

SUBJECT = "Łódź: Őrs wins, naïve ł"
SIGNER = "Ada Lovelace, ML lead <ada@example.com>"
AUTHOR = "Łukasz Őrsi"
COMMITTER = "Zoë Łódź"


def cp1252_locale() -> str:
    """A cp1252 locale this machine has; fails in CI (where .ci/run makes one), else skips."""
    if not sys.platform.startswith("linux") or shutil.which("locale") is None:
        pytest.skip("a cp1252 locale is generated with glibc's localedef (Linux only); "
                    "Windows runs cp1252 natively")
    listed = subprocess.run(["locale", "-a"], capture_output=True).stdout.decode("ascii",
                                                                                 "replace")
    for name in listed.split():
        if name.lower().replace("-", "").endswith(".cp1252"):
            return name
    message = ("no cp1252 locale: run `localedef -i en_US -f CP1252 en_US.CP1252` "
               "(the `locales` package; .ci/run does)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def cp1252_env() -> dict[str, str]:
    name = cp1252_locale()
    env = dict(os.environ, LC_ALL=name, LANG=name, PYTHONUTF8="0", NO_COLOR="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTHONIOENCODING", None)
    check = subprocess.run([sys.executable, "-c", "import locale, sys; print(locale."
                            "getpreferredencoding(), sys.getfilesystemencoding())"],
                           env=env, capture_output=True, text=True, check=True)
    assert check.stdout.lower().split() == ["cp1252", "cp1252"], check.stdout
    return env


def aisdp(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "aisdp_log", *args], cwd=cwd, env=env,
                          capture_output=True)
    done.stdout = done.stdout.decode("cp1252", "replace")
    done.stderr = done.stderr.decode("cp1252", "replace")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    return done


def non_ascii_commit(repo: Path) -> str:
    """An empty commit with a subject, author and committer cp1252 cannot decode."""
    env = dict(os.environ, GIT_AUTHOR_NAME=AUTHOR, GIT_AUTHOR_EMAIL="lukasz@example.com",
               GIT_COMMITTER_NAME=COMMITTER, GIT_COMMITTER_EMAIL="zoe@example.com")
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", SUBJECT], cwd=repo, env=env,
                   check=True)
    return git(repo, "rev-parse", "HEAD")


def test_git_output_with_non_ascii_subjects_and_authors_is_read_as_utf8(cp1252_env, tmp_path):
    project = make_project(tmp_path, tamper=None)
    non_ascii_commit(project.repo)
    script = ("from aisdp_log.repo.git import run_git; import sys; "
              "out = run_git(['log', '-1', '--format=%an|%cn|%s'], '.', text=True).stdout; "
              "sys.stdout.buffer.write(out.encode('utf-8'))")
    done = subprocess.run([sys.executable, "-c", script], cwd=project.repo, env=cp1252_env,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode("utf-8") == f"{AUTHOR}|{COMMITTER}|{SUBJECT}\n"


def test_review_sign_and_verify_with_a_non_ascii_key_path(cp1252_env, tmp_path):
    project = make_project(tmp_path, tamper=None)
    non_ascii_commit(project.repo)
    keys = tmp_path / "klucze-Łódź-ł"  # UTF-8 bytes; 0x81 (in Ł) is no cp1252 character
    keys.mkdir()
    key = make_key(keys, "ada")
    allow(project.repo, "ada@example.com", key)

    signed = aisdp(cp1252_env, project.repo, "review", str(project.log), "--period",
                   "2026-Q3", "-o", "out", "--sign", SIGNER, "--key", str(key))
    assert signed.returncode in (0, 1), signed.stderr
    assert (project.repo / "out" / "review-2026-Q3.json.sig").is_file()

    # the same key through git's user.signingkey, which git prints back as bytes
    git(project.repo, "config", "gpg.format", "ssh")
    git(project.repo, "config", "user.signingkey", str(key))
    again = aisdp(cp1252_env, project.repo, "review", str(project.log), "--period", "2026-Q3",
                  "-o", "out", "--sign", SIGNER)
    assert again.returncode in (0, 1), again.stderr

    # a signer's name typed in a UTF-8 terminal under the cp1252 locale
    named = aisdp(cp1252_env, project.repo, "review", str(project.log), "--period", "2026-Q3",
                  "-o", "out", "--sign", "Łucja Őrs, ML lead <ada@example.com>")
    assert named.returncode in (0, 1), named.stderr
    statements = sorted((project.repo / "out").glob("review-2026-Q3*.json"))
    assert any('"name":"Łucja Őrs"' in path.read_text(encoding="utf-8") for path in statements)

    verified = aisdp(cp1252_env, project.repo, "verify", str(project.log))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    validated = aisdp(cp1252_env, project.repo, "validate", str(project.log))
    assert validated.returncode in (0, 1), validated.stderr


def test_rerun_of_a_commit_with_a_non_ascii_subject_and_author(cp1252_env, tmp_path):
    root, log = tiny_rerun_project(tmp_path, then_commit=non_ascii_commit, row={
        "Hypothesis": "Łódź data", "Notes": "Őrs", "Reviewer": "Łukasz"})

    done = aisdp(cp1252_env, root, "rerun", str(log), "--id", "EXP-001", "--mode", "bitwise")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "bitwise" in done.stdout
    assert git(root, "worktree", "list").count("\n") == 0
