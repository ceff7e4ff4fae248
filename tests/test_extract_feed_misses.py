"""Indicators real exploit-kit and malware-analysis feeds write in unusual shapes."""

from __future__ import annotations

from generator.extract.indicators import extract


def _pairs(text: str) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in extract(text)}


def test_defanged_namecoin_names_are_domains() -> None:
    text = "<td>vnz[.]bit|104.239.213[.]7</td> and the fallback carder[.]bit"
    assert {("domain", "vnz.bit"), ("domain", "carder.bit")} <= _pairs(text)


def test_namecoin_url_with_a_scheme_is_a_url() -> None:
    assert ("url", "http://vnz.bit/gate.php") in _pairs("beacon to hxxp://vnz[.]bit/gate.php")


def test_plain_bit_file_name_is_not_a_domain() -> None:
    assert not any(t == "domain" for t, _ in _pairs("Load design.bit onto the FPGA board."))


def test_onion_names_are_domains() -> None:
    assert ("domain", "abcdefghijklmnop.onion") in _pairs("leak site abcdefghijklmnop.onion")
