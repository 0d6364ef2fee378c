"""Who signs: `Name, Role <email>`, the e-mail being the principal the key must belong to.

Identity is bound the way git and GitHub bind a commit's e-mail to its signing key: a sign-off
names its signer's e-mail, and `verify` checks the signature with
`ssh-keygen -Y verify -I <that e-mail>`, so only a key the allowed signers list *for that
principal* verifies it. The name and role are the signer's words; `aisdp.toml`'s `[signers]`
table, where it exists, fixes the only name and role each principal may sign as.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aisdp_log.errors import AisdpLogError

#: A principal as OpenSSH's allowed signers and git's user.email write it: no spaces, no
#: characters that would end the `<...>` or start a pattern list.
EMAIL = re.compile(r"^[^\s<>,*?!\"'@]+@[^\s<>,*?!\"'@]+$")
_WITH_EMAIL = re.compile(r"^(?P<name_and_role>[^<>]*?)\s*<(?P<email>[^<>]*)>\s*$")
MAX_LENGTH = 200


@dataclass(frozen=True)
class Signer:
    """A signer as a sign-off names them."""

    name: str
    role: str
    email: str

    @property
    def name_and_role(self) -> str:
        return f"{self.name}, {self.role}"

    @property
    def display(self) -> str:
        """`Name, Role <email>`: what the Sign-off sheet, the review and `verify` show."""
        return f"{self.name_and_role} <{self.email}>" if self.email else self.name_and_role


def split_signer(text: str) -> tuple[str, str, str | None]:
    """(name, role, e-mail or None) of `Name, Role [<email>]`; AisdpLogError where it is not
    that shape."""
    cleaned = " ".join(str(text).split())
    email = None
    match = _WITH_EMAIL.match(cleaned)
    if match:
        cleaned, email = match.group("name_and_role"), match.group("email").strip()
        if not EMAIL.match(email):
            raise AisdpLogError(f"--sign {text!r}: <{email}> is not an e-mail address")
    elif "<" in cleaned or ">" in cleaned:
        raise AisdpLogError(f"--sign {text!r}: write the signer as \"Name, Role <email>\"")
    name, sep, role = cleaned.partition(",")
    if not sep or not name.strip() or not role.strip():
        raise AisdpLogError(f"--sign {text!r}: write the signer as \"Name, Role <email>\", "
                            "e.g. \"Ada Lovelace, Head of ML <ada@example.org>\"")
    if len(cleaned) > MAX_LENGTH:
        raise AisdpLogError(f"--sign: name and role longer than {MAX_LENGTH} characters")
    return name.strip(), role.strip(), email


def parse_signer(text: str, default_email: str | None, *, required: bool = True) -> Signer:
    """The signer of `--sign`; without `<email>`, `default_email` (git's user.email).
    AisdpLogError (exit 2) where there is no usable e-mail and `required` (a sign-off signed
    with a key: an identity needs a principal); otherwise email "" (an unsigned sign-off)."""
    name, role, email = split_signer(text)
    if email is None:
        email = (default_email or "").strip()
        if not email and required:
            raise AisdpLogError(f"--sign {text!r}: no e-mail: write \"Name, Role <email>\", "
                                "or set git's user.email")
        if email and not EMAIL.match(email):
            if not required:
                email = ""
            else:
                raise AisdpLogError(f"git's user.email {email!r} is not an e-mail address: "
                                    "write --sign \"Name, Role <email>\"")
    return Signer(name, role, email)


def statement_signer(statement: dict) -> Signer | None:
    """The signer a statement names; None where it names none. A statement of aisdp-log 0.2
    names no e-mail: its Signer has email ""."""
    signer = statement.get("signer")
    if not isinstance(signer, dict):
        return None
    email = signer.get("email")
    return Signer(str(signer.get("name", "")), str(signer.get("role", "")),
                  email if isinstance(email, str) else "")


def policy_problem(signer: Signer, signers: dict[str, str]) -> str | None:
    """Why `[signers]` does not let this signer sign as they claim; None where it does (or
    where the table is empty)."""
    if not signers:
        return None
    allowed = signers.get(signer.email)
    if allowed is None:
        return f"[signers] in aisdp.toml lists no principal {signer.email!r}"
    if allowed.casefold() != signer.name_and_role.casefold():
        return (f"[signers] in aisdp.toml lets {signer.email} sign only as {allowed!r}, "
                f"not {signer.name_and_role!r}")
    return None
