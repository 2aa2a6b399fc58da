"""Both languages, for real: every message the code and templates show has a Chinese
translation, and the catalogs compile without a complaint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PYBABEL = str(Path(sys.executable).with_name("pybabel"))


def test_every_message_in_the_code_has_a_chinese_translation(tmp_path):
    template = tmp_path / "messages.pot"
    subprocess.run([PYBABEL, "-q", "extract", "-F", "babel.cfg", "-k", "_l",
                    "-o", str(template), "."],
                   cwd=ROOT, check=True, timeout=120)
    wanted = {m.id for m in read_po(template.open("rb")) if m.id}
    assert len(wanted) > 1000  # the extraction found the code
    with (ROOT / "translations/zh_CN/LC_MESSAGES/messages.po").open("rb") as handle:
        chinese = read_po(handle)
    translated = {m.id for m in chinese
                  if m.id and not m.fuzzy and (all(m.string) if isinstance(m.string, tuple)
                                              else m.string)}
    assert sorted(wanted - translated) == []  # `make messages`, then translate what is new


def test_the_catalogs_compile_without_warnings(tmp_path):
    for lang in ("zh_CN", "en"):
        done = subprocess.run([PYBABEL, "compile",
                               "-i", str(ROOT / f"translations/{lang}/LC_MESSAGES/messages.po"),
                               "-o", str(tmp_path / f"{lang}.mo"), "-l", lang],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        complaints = [line for line in done.stderr.splitlines()
                      if "WARNING" in line and "missing msgstr" not in line]
        assert complaints == []


@pytest.mark.parametrize("language, required", [("zh-CN", "该字段是必填字段。"),
                                                ("en", "This field is required.")])
def test_form_messages_in_each_language_read_from_disk_once(client, monkeypatch, language,
                                                           required):
    """WTForms' own messages are the page's language, from its catalogue read once and kept
    (i18n.form_messages), not read again for every request that builds a form."""
    from babel import support

    from portal import i18n

    loads = []
    read = support.Translations.load

    def counted(dirname, locales, domain):
        if domain == "wtforms":
            loads.append(str(locales[0]))
        return read(dirname, locales, domain)

    monkeypatch.setattr(support.Translations, "load", counted)
    monkeypatch.setattr(i18n, "_FORM_MESSAGES", {})
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    for _ in range(3):
        page = client.post("/login", data={"email": "", "password": ""}).get_data(as_text=True)
        assert required in page
    assert len(loads) == 1
