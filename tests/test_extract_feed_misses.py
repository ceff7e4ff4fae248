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


def test_cve_with_a_blank_after_the_hyphen() -> None:
    text = "The third package is a PDF with an exploit for CVE- 2010-0188, in Adobe Reader."
    assert ("cve", "CVE-2010-0188") in _pairs(text)


def test_cve_blank_does_not_stretch_to_other_shapes() -> None:
    cves = {
        v
        for t, v in _pairs("CVE-  2010-0188, CVE- 10-0188, CVE- 2010 and CVE-2010 -0188")
        if t == "cve"
    }
    assert cves == set()


def test_host_after_a_placeholder_label_is_the_indicator() -> None:
    text = "<td>[ID].bitslot[.]website|139.60.161.51</td>\nwildcard *.trapgo.host and {id}.farmand[.]site"
    pairs = _pairs(text)
    assert {
        ("domain", "bitslot.website"),
        ("domain", "trapgo.host"),
        ("domain", "farmand.site"),
        ("ipv4", "139.60.161.51"),
    } <= pairs


def test_indexing_in_code_is_no_placeholder() -> None:
    text = "value = items[i].name; data = args[0].stream.read(); see rows[1].total and 0[x].y"
    assert not any(t == "domain" for t, _ in _pairs(text))


def test_capture_field_with_a_stream_index_is_not_a_domain() -> None:
    text = (
        "A review of the network packet capture (PCAP) shows five stages.\n"
        "In tcp.stream 2, analysis reveals the injected script. In WireShark it is "
        "delivered in tcp.stream 8. After that the landing page loads."
    )
    assert not any(t == "domain" for t, _ in _pairs(text))


def test_host_with_a_count_in_a_capture_is_still_a_domain() -> None:
    text = "The PCAP shows a beacon to loader.live 4, then to stage.live 2, each over TLS."
    assert {("domain", "loader.live"), ("domain", "stage.live")} <= _pairs(text)


def test_version_after_player_is_not_an_address() -> None:
    text = (
        "CVE-2018-15982 (Flash Player up to 31.0.0.153) allows remote code execution; "
        "Flash Player 32.0.0.101 fixes it."
    )
    assert not any(t == "ipv4" for t, _ in _pairs(text))


def test_address_after_a_version_clause_is_kept() -> None:
    text = "The patched version fetches the firmware from 45.33.32.156 and 91.92.248.167."
    assert {("ipv4", "45.33.32.156"), ("ipv4", "91.92.248.167")} <= _pairs(text)
