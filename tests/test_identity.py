"""`Name, Role <email>`: the signer's words and the principal their key must be listed for;
`[signers]` in aisdp.toml fixes the only name and role a principal may sign as."""

from __future__ import annotations

import pytest

from aisdp_log.config import load_config
from aisdp_log.errors import AisdpLogError, ConfigError
from aisdp_log.signing.identity import Signer, parse_signer, policy_problem, statement_signer


@pytest.mark.parametrize(("text", "default", "expected"), [
    ("Ada Lovelace, Head of ML <ada@example.org>", None,
     Signer("Ada Lovelace", "Head of ML", "ada@example.org")),
    ("  Ada   Lovelace ,  Head of ML  <ada@example.org> ", "git@example.org",
     Signer("Ada Lovelace", "Head of ML", "ada@example.org")),
    ("Ada Lovelace, Head of ML", "ada@example.org",
     Signer("Ada Lovelace", "Head of ML", "ada@example.org")),
])
def test_the_signer_and_the_principal(text, default, expected):
    signer = parse_signer(text, default)
    assert signer == expected
    assert signer.display == "Ada Lovelace, Head of ML <ada@example.org>"


@pytest.mark.parametrize(("text", "default", "why"), [
    ("Ada Lovelace", "a@b.org", "Name, Role <email>"),
    ("Ada Lovelace, Head of ML", None, "no e-mail"),
    ("Ada Lovelace, Head of ML", "not an address", "not an e-mail"),
    ("Ada Lovelace, Head of ML <ada>", None, "not an e-mail"),
    ("Ada Lovelace, Head of ML <*@example.org>", None, "not an e-mail"),
    ("Ada Lovelace, Head of ML <a@b.org> <c@d.org>", None, "Name, Role <email>"),
    ("Ada <a@b.org>, Head of ML", None, "Name, Role <email>"),
])
def test_a_signer_without_a_usable_principal_is_refused(text, default, why):
    with pytest.raises(AisdpLogError, match=why):
        parse_signer(text, default)


def test_signers_allows_only_the_listed_name_and_role():
    table = {"ada@example.org": "Ada Lovelace, Head of ML"}
    assert policy_problem(Signer("Ada Lovelace", "Head of ML", "ada@example.org"), table) is None
    assert "only as" in policy_problem(Signer("Ada Lovelace", "CEO", "ada@example.org"), table)
    assert "lists no principal" in policy_problem(Signer("Bob", "QA", "bob@example.org"), table)
    assert policy_problem(Signer("Bob", "QA", "bob@example.org"), {}) is None


def test_a_statement_before_0_3_names_no_principal():
    old = statement_signer({"signer": {"name": "Ada", "role": "ML lead"}})
    assert old is not None and old.email == "" and old.display == "Ada, ML lead"


def test_signers_table_in_aisdp_toml(tmp_path):
    (tmp_path / "aisdp.toml").write_text('[signers]\n"ada@example.org" = "Ada  Lovelace, Head '
                                         'of ML"\n')
    assert load_config(tmp_path).signers == {"ada@example.org": "Ada Lovelace, Head of ML"}
    (tmp_path / "aisdp.toml").write_text('[signers]\n"ada" = "Ada Lovelace, Head of ML"\n')
    with pytest.raises(ConfigError, match="not an e-mail principal"):
        load_config(tmp_path)
    (tmp_path / "aisdp.toml").write_text('[signers]\n"ada@example.org" = "Ada Lovelace"\n')
    with pytest.raises(ConfigError, match="Name, Role"):
        load_config(tmp_path)


def test_an_unsigned_signoff_may_name_no_principal_a_signed_one_may_not():
    assert parse_signer("Ada Lovelace, Head of ML", None, required=False).display == \
        "Ada Lovelace, Head of ML"
    with pytest.raises(AisdpLogError, match="no e-mail"):
        parse_signer("Ada Lovelace, Head of ML", None, required=True)
