"""Tests for generator.extract.tags.find_tags and the bundled families list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.extract.tags import find_tags, load_families


def test_bundled_list_size_and_shape() -> None:
    names = load_families()
    canonical = set(names.values())
    assert 140 <= len(canonical) <= 200
    assert all(tag == tag.lower() and " " not in tag for tag in canonical)
    assert names["fancy bear"] == "apt28"
    assert names["sofacy"] == "apt28"


def test_aliases_map_to_canonical() -> None:
    text = "Fancy Bear (aka Sofacy, Forest Blizzard) and APT28 again."
    assert find_tags(text) == ["apt28"]


def test_case_insensitive_sorted_unique() -> None:
    text = "EMOTET dropped QakBot; later qbot and Cobalt Strike beacons, then LockBit 3.0."
    assert find_tags(text) == ["cobalt-strike", "emotet", "lockbit", "qakbot"]


def test_separators_in_names() -> None:
    assert find_tags("cobalt-strike, Cobalt_Strike and cobaltstrike") == ["cobalt-strike"]
    assert find_tags("Volt  Typhoon") == ["volt-typhoon"]


def test_whole_word_only() -> None:
    assert find_tags("emotetx xemotet apt280 lockbits") == []
    assert find_tags("(Emotet), emotet. [emotet]") == ["emotet"]


def test_special_characters_in_aliases() -> None:
    assert find_tags("LAPSUS$ leaked data") == ["lapsus"]
    assert find_tags("STOP/Djvu victims") == ["stop-djvu"]


def test_ambiguous_words_need_qualifier() -> None:
    assert find_tags("Play the video, a royal hive of snakes in the dark side") == []
    assert find_tags("Play ransomware and Royal ransomware") == [
        "play-ransomware",
        "royal-ransomware",
    ]


def test_empty() -> None:
    assert find_tags("") == []


def test_custom_list_parsing() -> None:
    names = load_families("# comment\nFooBar|foo bar|FB-1  # trailing\n\nbaz\n")
    assert names == {"foobar": "foobar", "foo bar": "foobar", "fb 1": "foobar", "baz": "baz"}


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    tags = find_tags(text)
    assert tags == sorted(set(tags))
