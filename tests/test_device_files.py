"""Device files: each loads in the real tool where Debian packages one (nginx ``-t``, BIND's
``named-checkzone``, ``ipset restore`` in a fresh network namespace) and passes our own checker
(tests/device_check.py), which fails on a deliberately broken file of its kind.

Suricata is not in Debian 12's main archive (only bookworm-backports), so ``suricata -T`` is
not run here; its files are checked by our checkers only.
"""

from __future__ import annotations

import base64
import ipaddress
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports.devices.common import DeviceMeta, aggregate, net_text, networks
from exports.devices.render import render
from exports.model import IOCRecord
from tests import device_check as dc
from tests.seed import SEED_NOW, seed_records
from worker.contract.device_files import BY_NAME, DEVICE_FILES, DeviceFile, part_name

META = DeviceMeta("enterprise", SEED_NOW, 365)
NAMES = {f.name for f in DEVICE_FILES}


BASE = seed_records()[0]


def record(type_: str, value: str, confidence: str = "high", n: int = 0) -> IOCRecord:
    return replace(BASE, type=type_, value=value, confidence=confidence, last_seen=SEED_NOW - n)


SEED = seed_records()


def rendered(name: str, records: list[IOCRecord] | None = None) -> list[bytes]:
    return render(BY_NAME[name], SEED if records is None else records, META)


def whole(name: str, records: list[IOCRecord] | None = None) -> bytes:
    parts = rendered(name, records)
    assert len(parts) == 1
    return parts[0]


def checker(file: DeviceFile) -> Callable[[bytes], list[str]]:
    """Our checker of one device file."""
    kind = file.name.split("-", 1)[-1].split(".")[0]
    by_format: dict[str, Callable[[bytes], list[str]]] = {
        "plain": lambda d: dc.each_line(d, lambda v: bool(v) and "\t" not in v, "a value"),
        "ip": lambda d: dc.each_line(d, dc.is_ip, "an address or block"),
        "edl-ip": dc.check_edl_ip,
        "edl-domain": dc.check_edl_domain,
        "edl-url": dc.check_edl_url,
        "fortigate": lambda d: dc.check_fortigate(d, kind),
        "hosts": dc.check_hosts,
        "rpz": lambda d: dc.check_rpz(d, SEED_NOW),
        "ipset": dc.check_ipset,
        "nginx-deny": dc.check_nginx_deny,
        "suricata-dataset": lambda d: dc.check_dataset(
            d, "string" if kind in ("domain", "url") else kind
        ),
        "suricata-iprep": lambda d: dc.check_iprep(
            whole("suricata-iprep.list"), whole("suricata-iprep-categories.txt")
        ),
        "suricata-rules": lambda d: dc.check_rules(d, NAMES),
        "zeek-intel": dc.check_zeek,
    }
    return by_format[file.format]


@pytest.mark.parametrize("file", DEVICE_FILES, ids=lambda f: f.name)
def test_every_device_file_passes_its_checker(file: DeviceFile):
    data = whole(file.name)
    assert data, f"{file.name} is empty for the seed corpus"
    assert checker(file)(data) == []


BROKEN: list[tuple[str, Callable[[bytes], list[str]], bytes]] = [
    ("edl-ip: hostname", dc.check_edl_ip, b"198.51.100.7\nevil.example\n"),
    ("edl-domain: scheme", dc.check_edl_domain, b"http://evil.example\n"),
    ("edl-domain: inner wildcard", dc.check_edl_domain, b"a.*.evil.example\n"),
    ("edl-url: scheme", dc.check_edl_url, b"https://evil.example/x\n"),
    ("edl-ip: too many", dc.check_edl_ip, b"198.51.100.7\n" * 50_001),
    (
        "fortigate: mixed hashes",
        lambda d: dc.check_fortigate(d, "md5"),
        b"a" * 32 + b"\n" + b"b" * 64 + b"\n",
    ),
    (
        "fortigate: too many lines",
        lambda d: dc.check_fortigate(d, "ip"),
        b"198.51.100.7\n" * 128_001,
    ),
    ("hosts: URL", dc.check_hosts, b"0.0.0.0 http://evil.example/x\n"),
    ("hosts: unicode", dc.check_hosts, "0.0.0.0 bücher.example\n".encode()),
    (
        "rpz: URL owner",
        lambda d: dc.check_rpz(d, 1),
        b"$TTL 300\n@ SOA a. b. ( 1 1 1 1 1 )\n NS a.\nhttp://evil.example/x CNAME .\n",
    ),
    (
        "rpz: host bits",
        lambda d: dc.check_rpz(d, 1),
        b"$TTL 300\n@ SOA a. b. ( 1 1 1 1 1 )\n NS a.\n24.7.100.51.198.rpz-ip CNAME .\n",
    ),
    (
        "rpz: wrong serial",
        lambda d: dc.check_rpz(d, 2),
        b"$TTL 300\n@ SOA a. b. ( 1 1 1 1 1 )\n NS a.\n",
    ),
    (
        "rpz: CNAME and other data",
        lambda d: dc.check_rpz(d, 1),
        b"$TTL 300\n@ SOA a. b. ( 1 1 1 1 1 )\n NS a.\nevil.example CNAME .\nevil.example A 127.0.0.1\n",
    ),
    ("ipset: v6 in inet", dc.check_ipset, b"create s hash:net family inet\nadd s 2001:db8::1\n"),
    ("ipset: unknown set", dc.check_ipset, b"add t 198.51.100.7\n"),
    (
        "ipset: full",
        dc.check_ipset,
        b"create s hash:net family inet maxelem 1\nadd s 198.51.100.7\nadd s 198.51.100.8\n",
    ),
    ("nginx: hostname", dc.check_nginx_deny, b"deny evil.example;\n"),
    ("nginx: host bits", dc.check_nginx_deny, b"deny 198.51.100.7/24;\n"),
    ("dataset: plain string", lambda d: dc.check_dataset(d, "string"), b"evil.example\n"),
    ("dataset: CIDR in ip", lambda d: dc.check_dataset(d, "ip"), b"198.51.100.0/24\n"),
    (
        "dataset: upper-case md5",
        lambda d: dc.check_dataset(d, "md5"),
        b"D41D8CD98F00B204E9800998ECF8427E\n",
    ),
    (
        "iprep: unknown category",
        lambda d: dc.check_iprep(d, b"1,socdef,x\n"),
        b"198.51.100.7,2,50\n",
    ),
    ("iprep: score 0", lambda d: dc.check_iprep(d, b"1,socdef,x\n"), b"198.51.100.7,1,0\n"),
    ("iprep: category id 61", lambda d: dc.check_iprep(d, b"61,socdef,x\n"), b""),
    (
        "rules: missing file",
        lambda d: dc.check_rules(d, set()),
        b'alert dns any any -> any any (msg:"x"; dns.query; dataset:isset,s,type string,load gone.lst; sid:1000001; rev:1;)\n',
    ),
    (
        "rules: sid outside the local range",
        lambda d: dc.check_rules(d, set()),
        b'alert dns any any -> any any (msg:"x"; sid:1; rev:1;)\n',
    ),
    ("zeek: spaces for tabs", dc.check_zeek, (dc.ZEEK_HEADER.replace("\t", " ") + "\n").encode()),
    (
        "zeek: URL with scheme",
        dc.check_zeek,
        (dc.ZEEK_HEADER + "\nhttp://evil.example/x\tIntel::URL\ts\t-\t-\n").encode(),
    ),
    (
        "zeek: empty field",
        dc.check_zeek,
        (dc.ZEEK_HEADER + "\nevil.example\tIntel::DOMAIN\ts\t\t-\n").encode(),
    ),
    ("no final line end", dc.check_hosts, b"0.0.0.0 evil.example"),
]


@pytest.mark.parametrize(("what", "check", "data"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_checker_fails_on_a_broken_file(
    what: str, check: Callable[[bytes], list[str]], data: bytes
):
    assert check(data), f"{what} passed the checker"


# What the files hold ------------------------------------------------------------------------


def test_ip_list_mixes_v4_and_v6_and_aggregates_to_cidr():
    records = [record("ipv4", f"10.0.0.{i}", n=i) for i in range(256)]
    records += [record("ipv6", "2001:db8::1"), record("ipv4", "198.51.100.7")]
    listed = whole("ip.txt", records).decode().split()
    assert listed[:2] == ["10.0.0.0", "10.0.0.1"] and "2001:db8::1" in listed
    assert whole("ip-cidr.txt", records).decode().split() == [
        "10.0.0.0/24",
        "198.51.100.7",
        "2001:db8::1",
    ]


def test_edl_list_over_the_panos_limit_is_split_newest_first():
    records = [
        record("ipv4", str(ipaddress.IPv4Address(0x0A000000 + 2 * i)), n=i) for i in range(120_001)
    ]
    parts = rendered("edl-ip.txt", records)
    assert [p.count(b"\n") for p in parts] == [50_000, 50_000, 20_001]
    assert parts[0].startswith(b"10.0.0.0\n") and all(dc.check_edl_ip(p) == [] for p in parts)
    assert [part_name("edl-ip.txt", i) for i in (1, 2, 3)] == [
        "edl-ip.txt",
        "edl-ip-2.txt",
        "edl-ip-3.txt",
    ]


def test_urls_lose_their_scheme_and_take_their_wire_form():
    urls = whole("edl-url.txt").decode().split("\n")
    assert 'exploit.example/cgi-bin/a.cgi?x="y"&z=1' in urls
    assert "xn--r8jz45g.example/%E3%83%91%E3%82%B9?q=%C3%BC" in urls
    assert not [u for u in urls if "://" in u]


def test_suricata_string_datasets_are_base64_of_the_dns_form():
    decoded = [base64.b64decode(x).decode() for x in whole("suricata-domain.lst").split()]
    assert decoded == [
        "evil.example",
        "phish.example",
        "xn--bcher-kva.example",
        "old-campaign.example",
    ]


def test_suricata_reputation_scores_follow_confidence():
    lines = whole("suricata-iprep.list").decode().split()
    assert "198.51.100.7,1,100" in lines and "203.0.113.99,1,30" in lines


def test_rpz_serial_is_the_build_time_and_triggers_cover_names_and_addresses():
    zone = whole("rpz.zone").decode()
    assert f"( {SEED_NOW} " in zone
    for owner in (
        "evil.example",
        "*.evil.example",
        "32.7.100.51.198.rpz-ip",
        "128.1.zz.db8.2001.rpz-ip",
    ):
        assert f"\n{owner} CNAME .\n" in zone


# The real tools -----------------------------------------------------------------------------


def test_nginx_accepts_the_deny_include(tmp_path: Path):
    include = tmp_path / "socdef-deny.conf"
    include.write_bytes(whole("nginx-deny.conf"))
    assert nginx_test(tmp_path, include).returncode == 0


def test_nginx_refuses_a_hostname_in_the_include(tmp_path: Path):
    include = tmp_path / "socdef-deny.conf"
    include.write_bytes(b"deny evil.example;\n")
    assert nginx_test(tmp_path, include).returncode != 0


def nginx_test(tmp_path: Path, include: Path) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; server {{ listen unix:{tmp_path}/nginx.sock; include {include}; }} }}\n"
    )
    return subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )


def named_checkzone(zone: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("named-checkzone"), "named-checkzone missing: apt-get install bind9-utils"
    return subprocess.run(
        ["named-checkzone", "-k", "fail", "-i", "local", "rpz.socdef", str(zone)],
        capture_output=True,
        text=True,
    )


def test_named_checkzone_loads_the_rpz_zone(tmp_path: Path):
    zone = tmp_path / "rpz.zone"
    zone.write_bytes(whole("rpz.zone"))
    result = named_checkzone(zone)
    assert result.returncode == 0, result.stdout
    assert f"loaded serial {SEED_NOW}" in result.stdout


def test_named_checkzone_passes_a_url_owner_that_our_checker_refuses(tmp_path: Path):
    broken = whole("rpz.zone") + b"http://evil.example/x CNAME .\n"
    zone = tmp_path / "rpz.zone"
    zone.write_bytes(broken)
    assert named_checkzone(zone).returncode == 0  # BIND lets it through ...
    assert dc.check_rpz(broken, SEED_NOW)  # ... ours does not


def test_named_checkzone_refuses_cname_and_other_data(tmp_path: Path):
    zone = tmp_path / "rpz.zone"
    zone.write_bytes(whole("rpz.zone") + b"evil.example A 127.0.0.1\n")
    assert named_checkzone(zone).returncode != 0


def ipset_restore(script: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``ipset restore`` then ``ipset save`` in a fresh network namespace owned by a fresh user
    namespace (``unshare --map-root-user --net``, no privileges needed): the sets live and die
    with it, the host's are never touched."""
    assert shutil.which("ipset"), "ipset missing: apt-get install ipset"
    path = tmp_path / "socdef.ipset"
    path.write_bytes(script)
    return subprocess.run(
        [
            "unshare",
            "--map-root-user",
            "--net",
            "sh",
            "-c",
            f"ipset restore -f {path} && ipset save",
        ],
        capture_output=True,
        text=True,
    )


def test_ipset_restores_both_sets_with_every_block(tmp_path: Path):
    records = [record("ipv4", f"10.0.0.{i}") for i in range(4)] + SEED
    result = ipset_restore(whole("ipset.restore", records), tmp_path)
    assert result.returncode == 0, result.stderr
    members = {
        tuple(line.split()[1:3]) for line in result.stdout.splitlines() if line.startswith("add ")
    }
    assert members == {
        ("socdef-v4", "10.0.0.0/30"),
        ("socdef-v4", "198.51.100.7"),
        ("socdef-v4", "203.0.113.99"),
        ("socdef-v6", "2001:db8::1"),
        ("socdef-v6", "2001:db8:dead:beef::42"),
    }
    assert "socdef-v4-new" not in result.stdout  # swapped in and destroyed


def test_ipset_refuses_a_v6_address_in_the_v4_set(tmp_path: Path):
    broken = whole("ipset.restore").replace(
        b"add socdef-v4-new 198.51.100.7", b"add socdef-v4-new 2001:db8::7"
    )
    assert ipset_restore(broken, tmp_path).returncode != 0
    assert dc.check_ipset(broken)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                ipaddress.IPv4Network,
                st.tuples(st.integers(0, 2**32 - 1), st.integers(20, 32)),
                strict=st.just(False),
            ),
            st.builds(
                ipaddress.IPv6Network,
                st.tuples(st.integers(0, 2**128 - 1), st.integers(118, 128)),
                strict=st.just(False),
            ),
        ),
        max_size=60,
    )
)
def test_aggregation_is_what_collapse_addresses_answers(nets):
    blocks = networks([str(n) for n in nets])
    expected = [
        *ipaddress.collapse_addresses([n for n in nets if n.version == 4]),
        *ipaddress.collapse_addresses([n for n in nets if n.version == 6]),
    ]
    assert [net_text(b) for b in aggregate(blocks)] == [
        str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in expected
    ]
