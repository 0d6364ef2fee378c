"""The stat-keyed digest cache: trusted only while the stat matches, stored atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from builders import git, init_repo, write_log
from test_checks_artefacts import HEADERS, cell, clean_row, make_folder

import aisdp_log
from aisdp_log.artefacts.cache import HashCache, NullCache, open_cache
from aisdp_log.system.seal import read_sealed, write_sealed


def fake_stat(size=10, mtime_ns=1_000_000_000_123, ino=7, ctime_ns=1_000_000_000_123):
    return os.stat_result((0o100644, ino, 1, 1, 0, 0, size, 0, 0, 0, 0.0, 0.0, 0.0,
                           0, mtime_ns, ctime_ns))


def test_entry_is_trusted_only_while_every_stat_field_matches(tmp_path):
    cache = HashCache(tmp_path / "hashes.json")
    stat = fake_stat()
    cache.store_digest("/a", stat, "f" * 64, hashed_at_ns=stat.st_ctime_ns + 10**9)
    assert cache.lookup("/a", stat) == "f" * 64
    for changed in ({"size": 11}, {"mtime_ns": stat.st_mtime_ns + 1}, {"ino": 8},
                    {"ctime_ns": stat.st_ctime_ns + 1}):
        assert cache.lookup("/a", fake_stat(**changed)) is None
    assert (cache.hits, cache.misses) == (1, 4)


def test_entry_hashed_in_the_same_tick_as_a_change_is_not_trusted(tmp_path):
    cache = HashCache(tmp_path / "hashes.json")
    stat = fake_stat()
    cache.store_digest("/a", stat, "f" * 64, hashed_at_ns=stat.st_ctime_ns + 1_000_000)
    assert cache.lookup("/a", stat) is None
    coarse = fake_stat(mtime_ns=5 * 10**9, ctime_ns=5 * 10**9)  # a whole-second file system
    cache.store_digest("/b", coarse, "f" * 64, hashed_at_ns=coarse.st_ctime_ns + 10**9)
    assert cache.lookup("/b", coarse) is None


def test_digest_reads_once_then_hits(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights" * 1000)
    time.sleep(0.1)  # out of the racy window
    cache = HashCache(tmp_path / "hashes.json")
    expected = hashlib.sha256(b"weights" * 1000).hexdigest()
    assert cache.digest(str(path), path.stat()) == expected
    cache.save()
    again = HashCache(tmp_path / "hashes.json")
    assert again.digest(str(path), path.stat()) == expected
    assert (again.hits, again.misses, again.bytes_hashed) == (1, 0, 0)


def test_save_forgets_deleted_files_and_keeps_others(tmp_path):
    kept, gone = tmp_path / "kept.bin", tmp_path / "gone.bin"
    kept.write_bytes(b"k")
    gone.write_bytes(b"g")
    time.sleep(0.1)  # out of the racy window: entries hashed in it are never kept
    store = tmp_path / "hashes.json"
    cache = HashCache(store)
    cache.digest(str(kept), kept.stat())
    cache.digest(str(gone), gone.stat())
    cache.save()
    gone.unlink()
    other = HashCache(store)
    new = tmp_path / "new.bin"
    new.write_bytes(b"n")
    time.sleep(0.1)
    other.digest(str(new), new.stat())
    other.save()
    assert sorted(HashCache(store).entries) == [str(kept), str(new)]
    assert json.loads(read_sealed(store))["format"] == 3


def test_corrupt_or_foreign_store_counts_as_empty(tmp_path):
    store = tmp_path / "hashes.json"
    for content in ("{", "[]", '{"format": 99, "digests": []}',
                    '{"format": 1, "entries": {"/a": [1, 2, 3, 4, "' + "f" * 64 + '", 5]}}',
                    '{"format": 3, "digests": ["/a", "1:2:3:4"], "records": 7}',
                    '{"format": 3, "digests": [["/a"], "1:2:3:4", "h"]}',
                    '{"format": 3, "digests": ["/a", 1, "' + "f" * 64 + '"]}'):
        write_sealed(store, content.encode())  # sealed by this user, yet not a store
        assert HashCache(store).entries == {} and HashCache(store).records == {}


def test_malformed_digest_is_never_trusted(tmp_path):
    """A store is data from a folder that may not be one's own: a digest that is not 64 hex
    characters is a miss, never a bogus hash."""
    stat = fake_stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}"
    store = tmp_path / "hashes.json"
    write_sealed(store, json.dumps({"format": 3, "digests": [
        "/short", key, "abc", "/number", key, 7, "/good", key, "f" * 64],
        "records": []}).encode())
    cache = HashCache(store)
    assert [cache.lookup(p, stat) for p in ("/short", "/number", "/good")] == \
        [None, None, "f" * 64]
    assert (cache.hits, cache.misses) == (1, 2)


def test_record_summary_is_trusted_only_while_the_stat_matches(tmp_path):
    cache = HashCache(tmp_path / "hashes.json")
    stat = fake_stat()
    late = stat.st_ctime_ns + 10**9
    cache.store_record("/run.json", stat, [None, {"seed": 1}], read_at_ns=late)
    cache.save()
    again = HashCache(tmp_path / "hashes.json")
    assert again.lookup_record("/run.json", stat) == [None, {"seed": 1}]
    for changed in ({"size": 11}, {"mtime_ns": stat.st_mtime_ns + 1}, {"ino": 8},
                    {"ctime_ns": stat.st_ctime_ns + 1}):
        assert again.lookup_record("/run.json", fake_stat(**changed)) is None
    assert (again.record_hits, again.record_misses, again.hits, again.misses) == (1, 4, 0, 0)
    racy = HashCache(tmp_path / "other.json")
    racy.store_record("/run.json", stat, [None, {}], read_at_ns=stat.st_ctime_ns + 1_000_000)
    assert racy.lookup_record("/run.json", stat) is None


def test_store_paths_are_relative_to_the_repository_so_a_moved_clone_keeps_its_cache(tmp_path):
    repo = tmp_path / "project"
    (repo / "artefacts").mkdir(parents=True)
    model = repo / "artefacts" / "model.pt"
    model.write_bytes(b"weights")
    time.sleep(0.1)
    cache = open_cache(repo)
    digest = cache.digest(str(model), model.stat())
    cache.save()
    assert "artefacts/model.pt" in json.loads(read_sealed(cache.store))["digests"]
    moved = tmp_path / "moved"
    repo.rename(moved)  # same inodes, same stat: the same bytes
    again = open_cache(moved)
    path = moved / "artefacts" / "model.pt"
    assert again.digest(str(path), path.stat()) == digest
    assert (again.hits, again.misses, again.bytes_hashed) == (1, 0, 0)


def test_null_cache_never_remembers(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"w")
    cache = NullCache()
    cache.digest(str(path), path.stat())
    cache.digest(str(path), path.stat())
    cache.save()
    assert (cache.hits, cache.misses) == (0, 2) and cache.bytes_hashed == 2


def test_open_cache_in_a_repository_stays_out_of_git_status(tmp_path):
    repo = init_repo(tmp_path / "project")
    path = repo / "model.pt"
    path.write_bytes(b"w")
    time.sleep(0.1)  # out of the racy window: entries hashed in it are never kept
    cache = open_cache(repo)
    cache.digest(str(path), path.stat())
    cache.save()
    assert (repo / ".aisdp-log" / "hashes.json").is_file()
    assert git(repo, "status", "--porcelain") == "?? model.pt"


def test_open_cache_where_the_folder_cannot_be_made_is_a_null_cache(tmp_path):
    (tmp_path / ".aisdp-log").write_text("in the way")
    assert isinstance(open_cache(tmp_path), NullCache)


# --------------------------------------------------------------------------- verdicts and code

def _artefact_codes(package: Path, repo: Path, log: Path) -> list[list[str]]:
    """The A-findings of `validate` run by the copy of the package in `package`, in a fresh
    process, as a user's next run of a changed tool would."""
    script = ("import json, sys, aisdp_log; "
              "assert aisdp_log.__file__.startswith(sys.argv[1]), aisdp_log.__file__; "
              "r = aisdp_log.validate(sys.argv[2], repo=sys.argv[3]); "
              "print(json.dumps(sorted([f.code, f.cell] for f in r.findings "
              "if f.code.startswith('A'))))")
    env = dict(os.environ, PYTHONPATH=str(package))
    result = subprocess.run([sys.executable, "-c", script, str(package), str(log), str(repo)],
                            env=env, capture_output=True, text=True, timeout=120, cwd=repo)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_changed_rule_outside_the_check_module_is_not_hidden_by_a_warm_cache(tmp_path):
    # the tool as installed, copied: its values.py will change between two runs
    package = tmp_path / "tool"
    shutil.copytree(Path(aisdp_log.__file__).parent, package / "aisdp_log",
                    ignore=shutil.ignore_patterns("__pycache__"))
    repo = init_repo(tmp_path / "project")
    make_folder(repo, "EXP-001", metrics={"accuracy": 0.9103})
    log = write_log(repo / "log.xlsx", [clean_row(**{"metrics.accuracy": 0.91})],
                    headers=HEADERS)
    time.sleep(0.1)  # out of the racy window, so the clean verdict is kept
    assert _artefact_codes(package, repo, log) == []  # 0.91 stands for 0.905..0.915
    assert _artefact_codes(package, repo, log) == []  # warm: the verdict holds
    assert (repo / ".aisdp-log" / "verdicts.json").is_file()

    # a stricter rule in values.py (not the check module): typed decimals count 3 more
    values = package / "aisdp_log" / "domain" / "values.py"
    source = values.read_text()
    rule = '    return len(text.partition(".")[2])\n'
    assert source.count(rule) == 1
    values.write_text(source.replace(rule, rule.rstrip("\n") + " + 3\n"))
    assert _artefact_codes(package, repo, log) == [["A003", cell("metrics.accuracy")]]


def test_code_fingerprint_is_read_once_per_process_and_names_every_module():
    from aisdp_log.artefacts.cache import code_fingerprint

    code_fingerprint.cache_clear()
    first = code_fingerprint("salt")
    assert code_fingerprint("salt") is first and code_fingerprint.cache_info().hits == 1
    assert code_fingerprint("other") != first
