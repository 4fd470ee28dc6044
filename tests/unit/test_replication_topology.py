"""Starting link conditions: the real-world latency table and ``--link``."""

from __future__ import annotations

import itertools

import pytest

from meridian.main import build_parser
from meridian.replication.link import LinkConditions
from meridian.replication.topology import (
    KNOWN_REGIONS,
    LinkOverride,
    link_conditions,
    one_way_latency_ms,
    parse_links,
    realistic_links,
)

LAB_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1")


def test_every_pair_of_the_lab_regions_has_a_latency_the_same_both_ways():
    assert set(LAB_REGIONS) <= KNOWN_REGIONS
    for a, b in itertools.combinations(LAB_REGIONS, 2):
        assert one_way_latency_ms(a, b) == one_way_latency_ms(b, a) > 0


def test_latencies_follow_geography():
    assert one_way_latency_ms("us-east-1", "us-east-1") == 0
    assert one_way_latency_ms("eu-west-1", "eu-central-1") < one_way_latency_ms("us-east-1", "eu-west-1")
    assert one_way_latency_ms("us-east-1", "eu-west-1") < one_way_latency_ms("us-east-1", "ap-southeast-2")
    assert one_way_latency_ms("eu-west-1", "ap-southeast-2") == max(
        one_way_latency_ms(a, b) for a, b in itertools.combinations(LAB_REGIONS, 2)
    )


def test_an_unknown_region_is_named():
    with pytest.raises(KeyError, match="region-a"):
        one_way_latency_ms("us-east-1", "region-a")


def test_realistic_links_is_a_link_flag_for_each_peer():
    text = realistic_links("us-east-1", ["eu-west-1", "ap-southeast-2"])
    assert parse_links(text) == {
        "eu-west-1": LinkOverride(one_way_latency_ms("us-east-1", "eu-west-1")),
        "ap-southeast-2": LinkOverride(one_way_latency_ms("us-east-1", "ap-southeast-2")),
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", {}),
        ("b=80", {"b": LinkOverride(80.0)}),
        ("b=80:5", {"b": LinkOverride(80.0, 5.0)}),
        (" b=80:5:0.01 , c=0.5 ", {"b": LinkOverride(80.0, 5.0, 0.01), "c": LinkOverride(0.5)}),
    ],
)
def test_link_flags_parse(text, expected):
    assert parse_links(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("b", "expected PEER="),
        ("=80", "expected PEER="),
        ("b=", "expected PEER="),
        ("b=1:2:0.1:4", "expected PEER="),
        ("b=fast", "not a number"),
        ("b=-1", "must not be negative"),
        ("b=10:1:0.95", "loss must be within"),
        ("b=1,b=2", "given twice"),
    ],
)
def test_malformed_link_flags_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_links(text)


def test_overrides_lie_over_the_defaults_per_peer():
    default = LinkConditions(latency_ms=10, jitter_ms=2, loss=0.01)
    conditions = link_conditions(["b", "c", "d"], default, parse_links("b=80,c=90:0:0"))
    assert conditions == {
        "b": LinkConditions(latency_ms=80, jitter_ms=2, loss=0.01),
        "c": LinkConditions(latency_ms=90, jitter_ms=0, loss=0),
        "d": default,
    }


def test_an_override_for_a_stranger_is_refused():
    with pytest.raises(ValueError, match="not among the peers"):
        link_conditions(["b"], LinkConditions(), parse_links("z=10"))


def test_the_replicator_and_up_take_the_flags():
    ns = build_parser().parse_args([
        "replicator", "--region", "a", "--nodes", "n=h:1", "--listen", "h:2", "--data-dir", "d",
        "--peers", "b=h:3", "--link", "b=35:1",
    ])  # fmt: skip
    assert ns.link == "b=35:1"
    ns = build_parser().parse_args(["up", "--regions", "us-east-1,eu-west-1", "--realistic-links"])
    assert ns.realistic_links


def test_up_refuses_realistic_links_between_regions_it_does_not_know(tmp_path, capsys):
    from meridian.main import main

    assert main(["up", "--regions", "us-east-1,region-x", "--realistic-links", "--data-dir", str(tmp_path)]) == 2
    assert "region-x" in capsys.readouterr().err
