"""aisdp_log.repo.git on real repositories: batched lookups, blobs, reachability, shallowness."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess

import pytest
from builders import commit, git, init_repo

from aisdp_log.errors import RepositoryError
from aisdp_log.repo.git import GitRepo
from aisdp_log.system.seal import read_sealed, write_sealed

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def colliding_commits(repo, digits: int = 7) -> tuple[str, str, str]:
    """Write two real commit objects whose SHAs share their first `digits` hex characters.

    A birthday search over commit texts in Python (~2^14 sha1s, a few ms), then only the two
    colliding objects are written with `git hash-object`; returns (prefix, sha_a, sha_b)."""
    # the empty tree must exist for the commits to be valid
    subprocess.run(["git", "mktree"], cwd=repo, input=b"", check=True, capture_output=True)
    seen: dict[str, bytes] = {}
    attempt = 0
    while True:
        body = (f"tree {EMPTY_TREE}\nauthor T <t@example.com> 1780000000 +0000\n"
                f"committer T <t@example.com> 1780000000 +0000\n\nattempt {attempt}\n").encode()
        sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
        if sha[:digits] in seen:
            break
        seen[sha[:digits]] = body
        attempt += 1
    written = []
    for text in (seen[sha[:digits]], body):
        out = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo,
                             input=text, check=True, capture_output=True)
        written.append(out.stdout.decode().strip())
    assert written[0][:digits] == written[1][:digits] and written[0] != written[1]
    return sha[:digits], written[0], written[1]


@pytest.fixture
def repo(tmp_path):
    return init_repo(tmp_path / "repo")


def test_open_refuses_a_folder_that_is_not_a_repository(tmp_path):
    with pytest.raises(RepositoryError):
        GitRepo.open(tmp_path)


def test_lookup_full_and_short_shas_with_committer_date_in_its_own_zone(repo):
    sha = commit(repo, {"a.txt": "1"}, date="2026-07-01T23:30:00-05:00")
    handle = GitRepo.open(repo)
    found = handle.lookup_commits([sha, sha[:7], "0" * 12, "no-such-tag"])
    assert found[sha].status == "found" and found[sha[:7]].sha == sha
    assert found[sha].committed.date() == dt.date(2026, 7, 1)  # 04:30 UTC the next day
    assert found[sha].committed.utcoffset() == dt.timedelta(hours=-5)
    assert found["0" * 12].status == "missing"
    assert found["no-such-tag"].status == "missing"


def test_tags_resolve_to_their_commit(repo):
    sha = commit(repo, {"a.txt": "1"})
    git(repo, "tag", "-a", "v1", "-m", "annotated")
    git(repo, "tag", "light")
    found = GitRepo.open(repo).lookup_commits(["v1", "light"])
    assert found["v1"].sha == sha and found["light"].sha == sha


def test_a_blob_sha_is_not_a_commit(repo):
    commit(repo, {"a.txt": "only a blob"})
    blob = git(repo, "rev-parse", "HEAD:a.txt")
    assert GitRepo.open(repo).lookup_commits([blob])[blob].status == "missing"


def test_a_prefix_two_commits_share_is_ambiguous(repo):
    commit(repo, {"a.txt": "1"})
    prefix, first, second = colliding_commits(repo)
    found = GitRepo.open(repo).lookup_commits([prefix, first])
    assert found[prefix].status == "ambiguous"
    assert found[first].status == "found"


def test_a_prefix_one_commit_and_a_blob_share_resolves_to_the_commit(repo):
    commit(repo, {"a.txt": "1"})
    subprocess.run(["git", "mktree"], cwd=repo, input=b"", check=True, capture_output=True)
    seen: dict[str, tuple[str, bytes]] = {}
    attempt = 0
    while True:  # birthday search between commit texts and blob texts
        kind = "commit" if attempt % 2 else "blob"
        body = (f"tree {EMPTY_TREE}\nauthor T <t@example.com> 1780000000 +0000\n"
                f"committer T <t@example.com> 1780000000 +0000\n\n{attempt}\n").encode() \
            if kind == "commit" else f"blob {attempt}\n".encode()
        sha = hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()
        other = seen.get(sha[:7])
        if other is not None and other[0] != kind:
            break
        seen.setdefault(sha[:7], (kind, body))
        attempt += 1
    for object_kind, text in (other, (kind, body)):
        subprocess.run(["git", "hash-object", "-t", object_kind, "-w", "--stdin"], cwd=repo,
                       input=text, check=True, capture_output=True)
    found = GitRepo.open(repo).lookup_commits([sha[:7]])[sha[:7]]
    assert found.status == "found" and found.sha[:7] == sha[:7]


def test_unreachable_lists_only_commits_on_no_branch_or_tag(repo):
    kept = commit(repo, {"a.txt": "1"})
    dropped = commit(repo, {"a.txt": "2"})
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    handle = GitRepo.open(repo)
    assert handle.unreachable([kept, dropped]) == {dropped}
    git(repo, "tag", "keep-it", dropped)
    assert handle.unreachable([kept, dropped]) == {dropped}  # remembered for the handle's life
    assert GitRepo.open(repo).unreachable([kept, dropped]) == set()


def test_read_blobs_at_commits_in_one_call(repo):
    first = commit(repo, {"uv.lock": "v1\n"})
    second = commit(repo, {"uv.lock": "v2\n", "b/c.txt": "c"})
    blobs = GitRepo.open(repo).read_blobs([f"{first}:uv.lock", f"{second}:uv.lock",
                                           f"{first}:b/c.txt", f"{second}:b"])
    assert blobs == {f"{first}:uv.lock": b"v1\n", f"{second}:uv.lock": b"v2\n",
                     f"{first}:b/c.txt": None, f"{second}:b": None}


def test_files_at_lists_matching_paths_per_commit(repo):
    first = commit(repo, {"a.dvc": "outs: []\n", "x.txt": "x"})
    second = commit(repo, {"sub/b.dvc": "outs: []\n", "sub/dvc.lock": "stages: {}\n"})
    found = GitRepo.open(repo).files_at([first, second], ["*.dvc", "*dvc.lock"])
    assert found[first] == ["a.dvc"]
    assert sorted(found[second]) == ["a.dvc", "sub/b.dvc", "sub/dvc.lock"]


def test_changed_blobs_sees_every_version_on_shared_refs(repo):
    commit(repo, {"a.dvc": "outs: [1]\n"})
    commit(repo, {"a.dvc": "outs: [2]\n", "other.txt": "x"})
    versions = GitRepo.open(repo).changed_blobs(["*.dvc"])
    assert {path for path, _ in versions} == {"a.dvc"} and len(versions) == 2


def test_shallow_clone_is_detected(tmp_path, repo):
    commit(repo, {"a.txt": "1"})
    commit(repo, {"a.txt": "2"})
    assert not GitRepo.open(repo).is_shallow
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    assert GitRepo.open(clone).is_shallow


def test_names_with_newlines_never_reach_git(repo):
    commit(repo, {"a.txt": "1"})
    with pytest.raises(ValueError):
        GitRepo.open(repo).read_blobs(["HEAD:a.txt\nHEAD:b.txt"])


def test_large_batches_neither_deadlock_nor_mix_answers(repo):
    # 3,000 requests (> the pipe buffer) for 4 KiB blobs (12 MiB of answers)
    sha = commit(repo, {f"f{i}.txt": f"{i}\n" * 1024 for i in range(30)})
    specs = [f"{sha}:f{i % 30}.txt" if i % 7 else f"{sha}:absent{i}" for i in range(3000)]
    blobs = GitRepo.open(repo).read_blobs(specs)
    for i in range(3000):
        expected = None if i % 7 == 0 else f"{i % 30}\n".encode() * 1024
        assert blobs[specs[i]] == expected


def test_a_linked_worktree_opens_through_its_git_file(tmp_path, repo):
    sha = commit(repo, {"a.txt": "1"})
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    handle = GitRepo.open(tmp_path / "wt")
    assert handle.root == (tmp_path / "wt").resolve() and not handle.is_shallow
    assert handle.lookup_commits([sha[:7]])[sha[:7]].sha == sha


def test_object_ids_without_reading_contents(repo):
    sha = commit(repo, {"data.dvc": "outs: []\n"})
    expected = git(repo, "rev-parse", f"{sha}:data.dvc")
    ids = GitRepo.open(repo).object_ids([f"{sha}:data.dvc", f"{sha}:absent.dvc"])
    assert ids == {f"{sha}:data.dvc": expected, f"{sha}:absent.dvc": None}


def test_history_answers_are_kept_between_runs_while_the_refs_stay(repo):
    """Reachability and the history of DVC's records depend only on the refs: a later run
    with the same refs reads them from .aisdp-log/git-history.json; a moved ref (a new tag,
    a new commit) starts afresh."""
    import json

    commit(repo, {"a.dvc": "outs: [1]\n"})
    kept = commit(repo, {"a.dvc": "outs: [2]\n"})
    dropped = commit(repo, {"a.dvc": "outs: [3]\n"})
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    with GitRepo.open(repo) as handle:
        assert handle.unreachable([kept, dropped]) == {dropped}
        versions = handle.changed_blobs(["*.dvc"])
    assert len(versions) == 2
    store = repo / ".aisdp-log" / "git-history.json"
    saved = json.loads(read_sealed(store))
    assert saved["reachable"] == {kept: True, dropped: False}
    # the same refs: the stored answers are the ones given (shown by editing them as this
    # user, whose key seals the store; an edit by anyone else reads as no store)
    saved["reachable"][dropped] = True
    write_sealed(store, json.dumps(saved).encode())
    with GitRepo.open(repo) as handle:
        assert handle.unreachable([kept, dropped]) == set()
        assert handle.changed_blobs(["*.dvc"]) == versions
    # a ref moves: git is asked again
    git(repo, "tag", "keep-it", kept)
    saved["reachable"][kept] = False
    write_sealed(store, json.dumps(saved).encode())
    with GitRepo.open(repo) as handle:
        assert handle.unreachable([kept, dropped]) == {dropped}
    newer = commit(repo, {"a.dvc": "outs: [4]\n"})
    with GitRepo.open(repo) as handle:
        assert handle.unreachable([newer]) == set()
        assert len(handle.changed_blobs(["*.dvc"])) == 3
    assert (repo / ".aisdp-log" / ".gitignore").read_text().strip() == "*"
    assert "aisdp-log" not in git(repo, "status", "--porcelain")
