"""Context decides: versions, code names, redactions, secrets and customer zones.

Each case is a trap seen in real reports, written in the context it came in, next to the
indicator the same context must keep.
"""

from __future__ import annotations

import pytest

from generator.extract.indicators import extract


def values(text: str, kind: str) -> list[str]:
    return [i.value for i in extract(text) if i.type == kind]


# --- version numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'the web server logged the banner "SecureGate 9.1.18.2" next to every request',
        "One customer still ran the 2019 branch, SecureGate 8.4.2.1, and was spared.",
        "units on 9.1.19.0 and later were not exploited",
        'requests with a User-Agent of "sgcli/4.2.0.1" came first',
        "Every affected unit ran an older build; units\non 9.1.19.0 were patched by then.",
        "FortiOS 7.2.4.1 and vCenter 8.0.1.2 were both exposed",
    ],
)
def test_versions_named_with_their_product_or_bound_are_not_addresses(text: str) -> None:
    assert values(text, "ipv4") == []


def test_addresses_after_ordinary_words_stay_addresses() -> None:
    text = "The implant beaconed to 5.181.234.98 and, when that failed, to 23.81.246.193."
    assert values(text, "ipv4") == ["5.181.234.98", "23.81.246.193"]
    assert values("Cobalt Strike team server 45.142.212.61 answered", "ipv4") == ["45.142.212.61"]


# --- code identifiers and file names ----------------------------------------------------


CODE = """```vbscript
Set objStream = CreateObject("ADODB.Stream")
Set sh = CreateObject("WScript.Shell")
objHTTP.open "GET", "https://cdn-docsign.online/decoy/a.pdf", False
objStream.Type = 1
sh.Run "powershell -ep bypass", 0
```
The JScript variant calls xhr.open("GET", u) and log.save() before tp.Privileges[0].Luid.
"""


def test_com_classes_calls_and_members_are_not_domains() -> None:
    assert values(CODE, "domain") == []
    assert values(CODE, "url") == ["https://cdn-docsign.online/decoy/a.pdf"]


def test_names_in_a_code_clause_are_not_domains_but_network_use_is() -> None:
    text = (
        "The WebSocket library it bundles is okhttp3.internal.ws. Plugins and modules named "
        "in the code: stealer.browsers.chrome, utils.fs.save and report.new. The loader "
        "module connects to api.evilcdn.top on port 443."
    )
    assert values(text, "domain") == ["api.evilcdn.top"]


def test_calls_in_a_sentence_about_code_are_not_domains() -> None:
    text = (
        "It walks the profiles with os.walk and zips them with zipfile.ZipFile. Exfiltration "
        "uses requests.post against a webhook, reads with stream.read and saves with "
        "zipfile.ZipFile and buffer.save, then falls back to socket.connect.\n"
        "The hook imports json.loads and keeps its panel on relay-sync.live; it beacons with "
        "urllib.request to statsync.live. The dropper copies update.exe to a share and "
        "calls home to cdnsync.live."
    )
    assert sorted(values(text, "domain")) == ["cdnsync.live", "relay-sync.live", "statsync.live"]


def test_a_name_is_not_judged_by_a_neighbour_cut_at_the_window_edge() -> None:
    rows = "".join(f"h{n}.cdn-relay.online,hostname,campaign\n" for n in range(12))
    text = f"{rows}clawsindia.in,hostname,campaign\n{rows}outlook.email,hostname,campaign"
    assert "clawsindia.in" in values(text, "domain")


def test_file_listings_hold_file_names_everywhere_in_the_text() -> None:
    text = (
        "    -rw-r--r-- 1 www-data www-data 3340 Nov  3 02:18 session.save\n"
        "    -rwxr-xr-x 1 www-data www-data 9123 Nov  3 02:16 kworker.run\n\n"
        "dir /b:\n\n    proxies.txt\n    targets.csv\n    notes.docs\n\n"
        "The miner kworker.run mines to pool.hashvault-pro.top for the wallet in session.save."
    )
    assert values(text, "domain") == ["pool.hashvault-pro.top"]


def test_ioc_lists_in_code_blocks_and_defanged_names_are_kept() -> None:
    text = "```\nupdate-gw.securegate-cdn.top\nrelay.cdn-sync.live\n```\nand ADODB[.]Stream"
    assert values(text, "domain") == [
        "update-gw.securegate-cdn.top",
        "relay.cdn-sync.live",
        "adodb.stream",
    ]


# --- redactions ------------------------------------------------------------------------


def test_redacted_values_are_not_indicators() -> None:
    text = (
        "j.doe@customer.xxx received it; a sign-in from 185.213.154.xxx (a.b.c.xxx in the "
        "ticket) reached mx1.customer.xxx and bank.xxxxx.com. The kit was on "
        "customer-sharepoint.com-docs.info; the forwarding address p.morrison@outlook-mail.cc."
    )
    found = {(i.type, i.value) for i in extract(text)}
    assert found == {
        ("domain", "customer-sharepoint.com-docs.info"),
        ("email", "p.morrison@outlook-mail.cc"),
    }


# --- hashes and secrets ----------------------------------------------------------------

NT = "c0d27c0a477ae00eccbfc93b0548a5d9"
MD5 = "9e107d9d372bb6826bd81d3542a419d6"
SHA256 = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
KEY128 = "8359516feaab73f221baaa0f2f1a13f5c5cdb97f130b0ecbda33f17367c07462" * 2


@pytest.mark.parametrize(
    "text",
    [
        f"Administrator:500:aad3b435b51404eeaad3b435b51404ee:{NT}:::",
        f"NL$KM:{KEY128[::-1]}",
        f"  key : {KEY128[::-1]}",
        f"The krbtgt NT hash was {NT}, hence the reset.",
        f"campaign_id  = {NT}\nrc4_key      = {MD5}",
        f"HMAC:{NT}\nAES:{MD5}",
        f"FLAG 1: flag{{{NT}}}",
        "The string 68747470733a2f2f6576696c2e636f2f78 in the loader is text.",
        "placeholder 0123456789abcdef0123456789abcdef never replaced",
        f"the session token the C2 hands out, {SHA256}",
    ],
)
def test_secrets_keys_and_hex_text_are_not_hashes(text: str) -> None:
    assert [i for i in extract(text) if i.type in ("md5", "sha1", "sha256", "sha512")] == []


MIMIKATZ = f"""The operator decrypted the master key:

  mimikatz # dpapi::masterkey /in:"C:\\Users\\svc\\Protect\\{{guid}}" /rpc
  [domainkey] with RPC
    key : {KEY128}
    sha1: {SHA256[:40]}

and LSASS's copy of another one:

  mimikatz # sekurlsa::dpapi
  \t [00000000]
  \t * MasterKey :\t{KEY128[::-1]}
  \t * sha1(key) :\t{SHA256[-40:]}

The tool itself was run as sekurlsa::logonpasswords from lsm.exe, whose hashes follow.
SHA1: {MD5[:8]}{SHA256[8:40]}
  SHA256: {SHA256}
"""


def test_credential_tool_output_holds_keys_not_file_hashes() -> None:
    hashes = [i.value for i in extract(MIMIKATZ) if i.type in ("sha1", "sha256", "sha512")]
    assert hashes == [MD5[:8] + SHA256[8:40], SHA256]


def test_hashes_presented_as_hashes_are_kept() -> None:
    text = (
        f"$ md5sum qc_config.bin\n{MD5}  qc_config.bin\n"
        f"SHA-256: {SHA256} - locker.exe\n"
        f"| # | key | SHA-256 |\n|---|---|---|\n| 1 | x | {SHA256[::-1]} |\n"
    )
    assert values(text, "md5") == [MD5]
    assert values(text, "sha256") == [SHA256, SHA256[::-1]]


def test_hex_tokens_in_url_paths_are_not_hashes_unless_the_url_names_a_hash() -> None:
    # An exploit kit's landing page names its exploits by 64-hex path tokens; a sandbox or
    # VirusTotal link puts the sample's hash after /file/, /sample/ or ?hash=.
    token, other = SHA256[::-1], MD5 * 2
    text = (
        f"Flash exploit from hxxp://digiwebname[.]in/6ktpi5xo/{token} and "
        f"http://digiwebname.in/6ktpi5xo/{other};118800;94 on the landing page.\n"
        f"Sample: https://www.virustotal.com/en/file/{SHA256}/analysis/ and "
        f"https://www.reverse.it/sample/{SHA256[:40]}{MD5[:24]}?environmentId=1, "
        f"https://malshare.com/sample.php?action=detail&hash={MD5}\n"
        f"Payload http://evil-cdn.top/{MD5[::-1]}.exe"
    )
    assert set(values(text, "sha256")) == {SHA256, SHA256[:40] + MD5[:24]}
    assert set(values(text, "md5")) == {MD5, MD5[::-1]}
    urls = values(text, "url")
    assert f"http://digiwebname.in/6ktpi5xo/{token}" in urls and len(urls) == 5  # VT: allowlisted


# --- URLs --------------------------------------------------------------------------------


def test_asciidoc_and_wiki_link_text_is_not_part_of_the_url() -> None:
    text = (
        "links to https://gov-docs-portal.info/view/brief-0912[a document portal] and "
        "link:https://cdn-lantern.net/u/lnt.msi[Installer]; wiki "
        "[[https://secure-docview.org/d/Xk29|the lure]]; search https://s.top/q?a[]=1&b=2"
    )
    assert values(text, "url") == [
        "https://gov-docs-portal.info/view/brief-0912",
        "https://cdn-lantern.net/u/lnt.msi",
        "https://secure-docview.org/d/Xk29",
        "https://s.top/q?a[]=1&b=2",
    ]


def test_net_tcp_urls_and_their_addresses() -> None:
    text = (
        'address="net.tcp://91.92.242.119:8733/AgentService/" and net.tcp://svc.host-c2.net:808/A'
    )
    found = [(i.type, i.value) for i in extract(text)]
    assert found == [
        ("url", "net.tcp://91.92.242.119:8733/AgentService/"),
        ("ipv4", "91.92.242.119"),
        ("url", "net.tcp://svc.host-c2.net:808/A"),
    ]


# --- customer zones --------------------------------------------------------------------


def test_customer_names_under_allowlisted_providers_are_reported() -> None:
    text = (
        "C2 at cdn-sync-7781.eastus.cloudapp.azure.com and office-login.azurewebsites.net; "
        "payload https://storage.googleapis.com/bucket-7781/svc.bin and "
        "https://cdn-sync-7781.github.io/a/loader.js; Cloud Run x2kq3-ew.a.run.app. "
        "See portal.azure.com, fonts.googleapis.com and https://github.com/x/y."
    )
    found = [(i.type, i.value) for i in extract(text)]
    assert found == [
        ("domain", "cdn-sync-7781.eastus.cloudapp.azure.com"),
        ("domain", "office-login.azurewebsites.net"),
        ("url", "https://storage.googleapis.com/bucket-7781/svc.bin"),
        ("url", "https://cdn-sync-7781.github.io/a/loader.js"),
        ("domain", "x2kq3-ew.a.run.app"),
    ]


# --- IPv6 in prose -----------------------------------------------------------------------


def test_ipv6_in_prose() -> None:
    text = (
        "It connected to 2a03:6f00:a::1:8b5e, then to [2a0d:5600:24:8c::f00d]:443 and "
        "(2602:fed2:7106:1b::1). Times such as 14:02:11, MACs like 00:1a:4b:16:01:59, "
        "std::string and fe80::1c2e:7aff:fe12:9b1 are not addresses."
    )
    assert values(text, "ipv6") == [
        "2a03:6f00:a::1:8b5e",
        "2a0d:5600:24:8c::f00d",
        "2602:fed2:7106:1b::1",
    ]


def test_display_filter_fields_are_not_domains() -> None:
    text = "inspecting tcp.stream eq 0 and http.request.method == POST showed C2 evil-c2.top"
    assert values(text, "domain") == ["evil-c2.top"]


def test_a_sample_id_is_the_samples_hash() -> None:
    assert values(f"Sample ID: {SHA256}", "sha256") == [SHA256]
    assert values(f"Bot ID: {SHA256}", "sha256") == []


def test_ipv6_glued_to_a_label() -> None:
    text = (
        "IPv6:2a03:b0c0:3:d0::1af1:1, dst:2a0e:97c0:3e3:2a::1; time:12:30:45 mac:00:1a:4b:16:01:59"
    )
    assert values(text, "ipv6") == ["2a03:b0c0:3:d0::1af1:1", "2a0e:97c0:3e3:2a::1"]
