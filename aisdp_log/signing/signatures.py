"""SSH signatures of sign-offs: the canonical statement, `ssh-keygen -Y`, allowed signers.

A signed sign-off is a statement (`review-<period>.json`: compact JSON, sorted keys, UTF-8)
signed with `ssh-keygen -Y sign -n aisdp-log`, the way git signs commits with SSH keys. Any
machine with OpenSSH 8.2+ checks it with `ssh-keygen -Y verify`, no aisdp-log needed, for as
long as the statement and the signature are kept (Annex IV 2(g), Article 18).

Every `ssh-keygen` call gets its arguments as a list (no shell) and its data on stdin; cell
text never becomes an option: a principal is passed after `-I`, a statement on stdin.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.git import config_value
from aisdp_log.signing.identity import Signer

NAMESPACE = "aisdp-log"
STATEMENT_FORMAT = "aisdp-log sign-off 1"
ALLOWED_SIGNERS_IN_REPO = Path(".aisdp") / "allowed_signers"
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
TIMEOUT = 60


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- the statement

def statement_text(statement: dict) -> str:
    """The canonical text of a statement: sorted keys, no spaces, non-ASCII kept as UTF-8."""
    return json.dumps(statement, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def statement_bytes(statement: dict) -> bytes:
    return statement_text(statement).encode("utf-8")


def build_statement(*, period: str, signer: Signer, signed_at: str, key: str | None,
                    rows: dict[str, dict], html_sha256: str, markdown_sha256: str,
                    previous: str | None, tool_version: str, log_name: str,
                    log_path: str | None = None) -> dict:
    """The statement a sign-off signs (see the module docstring). `signer.email` is the
    principal `verify` checks the key against; `log_path` (the log's path in its repository)
    ties the statement's copy under `.aisdp/signoffs/` to its log."""
    statement = {
        "format": STATEMENT_FORMAT,
        "period": period,
        "signer": {"name": signer.name, "role": signer.role, "email": signer.email},
        "signed_at": signed_at,
        "key": key,
        "rows": rows,
        "review": {"html": {"file": f"review-{period}.html", "sha256": html_sha256},
                   "markdown": {"file": f"review-{period}.md", "sha256": markdown_sha256}},
        "previous": previous,
        "tool_version": tool_version,
        "log": log_name,
    }
    if log_path is not None:
        statement["log_path"] = log_path
    return statement


def parse_statement(text: str) -> tuple[dict | None, str | None]:
    """(statement, None) or (None, why it cannot be read)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None, "the Statement cell is not valid JSON"
    if not isinstance(data, dict) or data.get("format") != STATEMENT_FORMAT:
        return None, f"the Statement cell is not an {STATEMENT_FORMAT!r} statement"
    if not isinstance(data.get("rows"), dict) or not isinstance(data.get("signer"), dict):
        return None, "the Statement cell lacks its rows or signer"
    return data, None


def normalise_armor(text: str) -> str:
    """An armored signature as ssh-keygen writes it, whatever line endings a spreadsheet
    program gave the cell."""
    lines = [line.strip() for line in str(text).replace("\r", "\n").split("\n") if line.strip()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- ssh-keygen

def ssh_keygen() -> str:
    """The ssh-keygen git signs with: git's `gpg.ssh.program` when set (a name on PATH or a
    path), else `ssh-keygen` on PATH. AisdpLogError (one line) where there is none."""
    configured = config_value(None, "gpg.ssh.program", path=True, timeout=TIMEOUT)
    if configured:
        found = shutil.which(configured) or \
            (configured if Path(configured).is_file() else None)
        if found is None:
            raise AisdpLogError(f"git config gpg.ssh.program names {configured!r}, which is "
                                "not found: fix the setting or install OpenSSH 8.2 or later")
        return found
    found = shutil.which("ssh-keygen")
    if found is None:
        raise AisdpLogError("ssh-keygen not found: install OpenSSH 8.2 or later "
                            "(Debian/Ubuntu: apt-get install openssh-client; macOS has it; "
                            "Windows: the OpenSSH Client optional feature, or Git for "
                            "Windows' usr\\bin)")
    return found


def openssh_version(keygen: str) -> str:
    """The OpenSSH release `keygen` belongs to (`OpenSSH_9.2p1`), asked of the `ssh` beside
    it (ssh-keygen has no version option); "an unknown version" where that cannot tell."""
    beside = Path(keygen).with_name("ssh" + Path(keygen).suffix)
    try:
        done = subprocess.run([str(beside), "-V"], capture_output=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return "an unknown version"
    match = re.search(r"OpenSSH[_A-Za-z]*_[0-9][0-9.p]*", done.stderr.decode("utf-8", "replace")
                      + done.stdout.decode("utf-8", "replace"))
    return match.group() if match else "an unknown version"


def _run(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess:
    keygen = ssh_keygen()
    try:
        done = subprocess.run([keygen, *args], input=data if data is not None else b"",
                              capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise AisdpLogError(f"ssh-keygen {args[0]} {args[1] if len(args) > 1 else ''} gave no "
                            f"answer in {TIMEOUT} s (a passphrase prompt?)") from exc
    except OSError as exc:
        raise AisdpLogError(f"ssh-keygen could not run: {exc.strerror or exc}") from exc
    if args[:1] == ["-Y"] and done.returncode != 0 and _lacks_signing(done.stderr):
        # An OpenSSH before 8.2 knows no -Y (and an early one not every -Y operation): its
        # refusal is no verdict on a signature, so it must never become an R007.
        raise AisdpLogError(f"{keygen} is {openssh_version(keygen)}, older than the signing "
                            f"features aisdp-log uses (`ssh-keygen -Y {args[1]}`, OpenSSH 8.2 "
                            "or later): install a newer OpenSSH, or point git config "
                            "gpg.ssh.program at one")
    return done


def _lacks_signing(stderr: bytes) -> bool:
    text = stderr.decode("utf-8", "replace")
    return bool(re.search(r"(unknown|illegal|invalid) option -- '?Y'?", text)) or \
        "Unsupported operation for -Y" in text


def _first_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "no message"


def key_fingerprint(key: Path) -> str:
    """`SHA256:...` of a private or public key file; AisdpLogError where it is no key."""
    if not key.is_file():
        raise AisdpLogError(f"{key}: signing key not found")
    done = _run(["-l", "-E", "sha256", "-f", str(key)])
    match = FINGERPRINT.search(done.stdout.decode("ascii", "replace"))
    if done.returncode != 0 or match is None:
        raise AisdpLogError(f"{key}: not an SSH key ({_first_line(done.stderr)})")
    return match.group()


def sign(data: bytes, key: Path) -> str:
    """The armored `ssh-keygen -Y sign` signature of `data`. `key` is a private key file, or a
    public key whose private half an ssh-agent holds."""
    done = _run(["-Y", "sign", "-n", NAMESPACE, "-f", str(key)], data)
    text = done.stdout.decode("ascii", "replace")
    if done.returncode != 0 or ARMOR_BEGIN not in text:
        raise AisdpLogError(f"{key}: ssh-keygen could not sign ({_first_line(done.stderr)})")
    return normalise_armor(text)


@dataclass
class SignatureCheck:
    """What ssh-keygen says about one signature of one statement."""

    valid: bool                 # the signature matches the statement (any key)
    fingerprint: str | None     # the key that made the signature
    principals: list[str]       # principals the allowed signers list that key for
    verified: bool              # `ssh-keygen -Y verify -I <principal>` accepted it
    detail: str = ""
    principal: str | None = None  # the principal it was checked against


def signature_key(signature: str) -> tuple[str, str] | None:
    """(the signing key as base64, as allowed signers files write it; its SHA256:
    fingerprint), read from an armored SSHSIG blob; None where it is no such blob."""
    body = "".join(line for line in normalise_armor(signature).splitlines()
                   if not line.startswith("-----"))
    try:
        blob = base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error):
        return None
    # SSHSIG: magic "SSHSIG", uint32 version, string public key, ... (PROTOCOL.sshsig)
    if not blob.startswith(b"SSHSIG") or len(blob) < 14:
        return None
    length = struct.unpack(">I", blob[10:14])[0]
    key = blob[14:14 + length]
    if len(key) != length or not key:
        return None
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode("ascii").rstrip("=")
    return base64.b64encode(key).decode("ascii"), f"SHA256:{digest}"


def principals_for(key_base64: str, allowed_signers: Path) -> list[str] | None:
    """The principals an allowed signers file lists `key_base64` for (without the options a
    line may carry); None where the file cannot be read."""
    try:
        text = allowed_signers.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = []
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and key_base64 in words[1:]:
            found += [p for p in words[0].split(",") if p]
    # `-I` needs a principal, not a pattern: plain names first
    return sorted(found, key=lambda p: "*" in p or "?" in p)


def verify_time(signed_at: str | None) -> str | None:
    """`signed_at` (`2026-11-26T09:00:00Z`) as ssh-keygen's `-O verify-time=` wants it
    (`20261126090000Z`), so `valid-after`/`valid-before` are judged at signing time; None
    where it is not that shape."""
    match = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z", signed_at or "")
    return "".join(match.groups()) + "Z" if match else None


def verify_args(allowed_signers: Path | str, principal: str, signature: Path | str,
                signed_at: str | None) -> list[str]:
    """The `ssh-keygen` arguments of the assessor's command (VERIFY.md prints the same)."""
    args = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE,
            "-s", str(signature)]
    when = verify_time(signed_at)
    return args + (["-O", f"verify-time={when}"] if when else [])


#: This process's verdicts, keyed on everything ssh-keygen's answer depends on (see
#: `check_signature`); a review checks each sign-off in its validation and again for its
#: sign-off history, and that second check starts no ssh-keygen.
_CHECKED: dict[tuple, SignatureCheck] = {}
_CHECKED_LIMIT = 512


def _program_identity() -> tuple:
    """The ssh-keygen that would run, as a path and its file's identity and version stamp."""
    keygen = ssh_keygen()
    try:
        stat = os.stat(keygen)
    except OSError:
        return (keygen,)
    return (keygen, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def check_signature(statement: bytes, signature: str, allowed_signers: Path | None,
                    principal: str | None = None, signed_at: str | None = None
                    ) -> SignatureCheck:
    """`check_signature_now`'s verdict, remembered for this process: keyed on the statement's
    and the signature's bytes, the allowed signers file's content (the anchor writes it to a
    fresh scratch path each time, so its path says nothing), the principal, the signing time
    and the ssh-keygen that answers. A verdict is kept only when the allowed signers file read
    the same after the check as before it, and never an error; each caller gets a copy."""
    allowed_digest = None
    if allowed_signers is not None:
        allowed_digest = _file_digest(allowed_signers)
        if allowed_digest is None:  # unreadable: nothing to key a verdict on
            return check_signature_now(statement, signature, allowed_signers, principal,
                                       signed_at)
    key = (_program_identity(), bytes(statement), normalise_armor(signature), allowed_digest,
           principal, signed_at)
    known = _CHECKED.get(key)
    if known is None:
        known = check_signature_now(statement, signature, allowed_signers, principal,
                                    signed_at)
        if allowed_signers is None or _file_digest(allowed_signers) == allowed_digest:
            if len(_CHECKED) >= _CHECKED_LIMIT:
                _CHECKED.clear()
            _CHECKED[key] = known
    return dataclasses.replace(known, principals=list(known.principals))


def check_signature_now(statement: bytes, signature: str, allowed_signers: Path | None,
                        principal: str | None = None, signed_at: str | None = None
                        ) -> SignatureCheck:
    """Check a signature as an assessor would: `ssh-keygen -Y verify -I <principal>`, with
    `principal` the e-mail the statement names (identity bound: a key the allowed signers
    list for someone else fails), judged at `signed_at` for `valid-after`/`valid-before`.
    Without `principal` (a 0.2 statement), the first principal the allowed signers give the
    key is tried, which proves only that *some* allowed signer signed. Only where verify
    fails does `-Y check-novalidate` tell a bad signature from a good one by a key not
    listed for the principal: one ssh-keygen process for a good signature, two at most."""
    parsed = signature_key(signature)
    fingerprint = parsed[1] if parsed else None
    with tempfile.TemporaryDirectory(prefix="aisdp-log-sig-") as folder:
        sig_path = Path(folder) / "statement.sig"
        sig_path.write_text(normalise_armor(signature), encoding="ascii", errors="replace")
        principals: list[str] = []
        refused = ""
        if allowed_signers is not None and parsed is not None:
            principals = principals_for(parsed[0], allowed_signers) or []
        target = principal or (principals[0] if principals else None)
        if allowed_signers is not None and target:
            verify = _run(verify_args(allowed_signers, target, sig_path, signed_at), statement)
            if verify.returncode == 0:
                return SignatureCheck(True, fingerprint, principals, True,
                                      _first_line(verify.stdout), target)
            refused = _first_line(verify.stdout + verify.stderr)
        done = _run(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig_path)], statement)
        out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        match = FINGERPRINT.search(out)
        fingerprint = match.group() if match else fingerprint
        if done.returncode != 0:
            return SignatureCheck(False, fingerprint, [], False, _first_line(done.stderr),
                                  target)
        if allowed_signers is None:
            return SignatureCheck(True, fingerprint, [], False, "no allowed signers file",
                                  target)
        if principals and (principal is None or principal in principals):
            # listed for this principal, a good signature, and still refused: its
            # valid-after/valid-before window, or the options of its line
            return SignatureCheck(True, fingerprint, principals, False, refused, target)
        why = (f"the allowed signers list this key for {', '.join(principals)}, not "
               f"{principal}" if principals and principal else
               "key not in the allowed signers")
        return SignatureCheck(True, fingerprint, principals, False, why, target)


# --------------------------------------------------------------------------- git settings

def git_config(repo: Path | None, name: str, *, path: bool = False) -> str | None:
    """One `git config` value as git resolves it in `repo`, or None."""
    return config_value(repo, name, path=path, timeout=TIMEOUT)


def default_signing_key(repo: Path | None, scratch: Path) -> Path | None:
    """git's `user.signingkey` when `gpg.format` is `ssh`: a key file, or a literal public
    key (`ssh-ed25519 AAAA...` or `key::...`) written to `scratch` for the agent to sign with."""
    if (git_config(repo, "gpg.format") or "").strip().lower() != "ssh":
        return None
    value = git_config(repo, "user.signingkey", path=True)
    if value is None:
        return None
    literal = value[5:] if value.startswith("key::") else value
    if literal.startswith(("ssh-", "ecdsa-", "sk-")):
        scratch.write_text(literal.strip() + "\n", encoding="utf-8")
        return scratch
    key = Path(os.path.expanduser(value))
    if not key.is_absolute() and repo is not None:
        key = repo / key
    return key
