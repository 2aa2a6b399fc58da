"""The agreement PDF as a reader sees it: rendered to PNG pages with pdftoppm (not blank), its
text read back with pdftotext (the Chinese clause titles, "第 X 页 / 共 Y 页"), and a real CJK
font embedded (pdffonts). Missing fonts or poppler-utils fail the build, on purpose."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from PIL import Image

from portal.services import Ctx, agreements

CLAUSE_TITLES = ["第一条", "合作范围", "第二条", "客户推荐与资料", "第三条", "服务时效",
                 "第四条", "驻场人员", "第五条", "阶段性担保", "第六条", "客户信息保护",
                 "第七条", "协议期限与终止"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt-get install poppler-utils"
    return path


@pytest.fixture
def issued_pdf(world, app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "PDF_CACHE_DIR", str(tmp_path / "cache"))
    manager = Ctx(user=world.manager, ip="10.0.0.1")
    today = agreements.local_today()
    agreement = agreements.draft(manager, world.org_a, {
        "products": ["housing_mortgage"], "projects": ["旭日花园二期", "旭日广场"],
        "stage_guarantee": "乙方提供阶段性连带责任保证，并按贷款金额的5%存入保证金。",
        "onsite_staff": "甲方每周二、周六派驻客户经理一名至售楼部。",
        "bank_sla_hours": 72, "partner_doc_days": 5,
        "effective_from": today, "expires_on": today + timedelta(days=364)})
    agreements.issue(manager, agreement)
    path = tmp_path / "agreement.pdf"
    path.write_bytes(agreement.pdf_data)
    return agreement, path


def test_pages_render_to_png_with_ink_on_them(issued_pdf, tmp_path):
    _, path = issued_pdf
    subprocess.run([_tool("pdftoppm"), "-png", "-r", "50", str(path), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3, "a typical agreement is three A4 pages"
    for png in pages:
        with Image.open(png) as image:
            width, height = image.size
            assert 400 <= width <= 430 and 570 <= height <= 600  # A4 at 50 dpi: 413 x 585
            histogram = image.convert("L").histogram()
            dark = sum(histogram[:128])
            assert dark > 0.005 * width * height, f"{png.name} is (nearly) blank"


def test_text_has_the_chinese_clause_titles_and_page_numbers(issued_pdf):
    agreement, path = issued_pdf
    text = subprocess.run([_tool("pdftotext"), "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, timeout=60).stdout.decode("utf-8")
    flat = re.sub(r"\s+", "", text)
    for title in CLAUSE_TITLES:
        assert title in flat, title
    for page in (1, 2, 3):
        assert f"第{page}页/共3页" in flat
    # Both parties' signature blocks, the document number and the content hash in the footer.
    assert "甲方（盖章）" in flat and "乙方（盖章）" in flat
    assert flat.count(agreement.number) >= 3
    assert agreement.content_sha256 in flat


def test_a_real_cjk_font_is_embedded_with_a_bold_face(issued_pdf):
    _, path = issued_pdf
    fonts = subprocess.run([_tool("pdffonts"), str(path)], check=True, capture_output=True,
                           timeout=60).stdout.decode()
    rows = [line for line in fonts.splitlines()[2:] if line.strip()]
    cjk = [row for row in rows if "CJK" in row]
    assert cjk, fonts
    assert all(" yes " in row for row in cjk), "CJK fonts must be embedded"
    assert any("Bold" in row for row in cjk), "headings need a real bold face"


def test_pdf_metadata_comes_from_the_agreement(issued_pdf):
    agreement, path = issued_pdf
    info = subprocess.run([_tool("pdfinfo"), str(path)], check=True, capture_output=True,
                          timeout=60).stdout.decode()
    assert re.search(r"Pages:\s+3", info)
    assert agreement.number in info  # title
    assert "WeasyPrint" in info


def test_the_cut_font_is_made_once_and_a_rare_character_still_prints(world, app, tmp_path,
                                                                       monkeypatch):
    """The PDF draws from a cut of the CJK font (GB2312 and the clause texts); a character
    outside the cut (堃, 喆 are GBK only: real given names) comes from the whole font, not as a
    blank box, and the cut is made once and then reused."""
    from portal.services.agreements import fonts, pdf

    monkeypatch.setitem(app.config, "PDF_CACHE_DIR", str(tmp_path / "cache"))
    cut = fonts.faces(tmp_path / "cache")
    assert [f.weight for f in cut] == ["normal", "bold"]
    assert all(f.path.is_file() for f in cut)
    # The faces keep every hanzi of the clause texts (fonts.charset reads the sources).
    assert {ord(ch) for ch in "协议编号乙方盖章阶段性担保"} <= set(fonts.charset())
    assert ord("堃") not in fonts.charset()
    made_at = [f.path.stat().st_mtime_ns for f in cut]
    manager = Ctx(user=world.manager, ip="10.0.0.1")
    today = agreements.local_today()
    agreement = agreements.draft(manager, world.org_a, {
        "products": ["housing_mortgage"], "projects": ["堃喆花园"],
        "bank_sla_hours": 72, "partner_doc_days": 5,
        "effective_from": today, "expires_on": today + timedelta(days=364)})
    path = tmp_path / "draft.pdf"
    path.write_bytes(pdf.render(agreements.document(agreement), use_cache=False).data)
    text = subprocess.run([_tool("pdftotext"), "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, timeout=60).stdout.decode("utf-8")
    assert "堃喆花园" in re.sub(r"\s+", "", text)
    embedded = subprocess.run([_tool("pdffonts"), str(path)], check=True, capture_output=True,
                              timeout=60).stdout.decode()
    assert "Agreement-Serif-CJK" in embedded and "Noto-Serif-CJK-SC" in embedded  # cut, whole
    assert [f.path.stat().st_mtime_ns for f in fonts.faces(tmp_path / "cache")] == made_at
