"""Contributor Insights' accessed rules sum consumed capacity units, its throttled rules count events (issue 15)."""

from __future__ import annotations

from tests.unit.test_contributors import Clock, item, make_table, on, ranked

from meridian.router.contributors import Contributors


def test_accessed_rules_sum_units_and_throttled_rules_count_requests():
    contributors = Contributors(Clock())
    table = make_table(**{"": on(), "byg": on(index_id=11)})
    # a 10 KB item read strongly (3 units) once outweighs a small one read four times (0.5 each)
    contributors.accessed(table, item("big"), units=3.0)
    for _ in range(4):
        contributors.accessed(table, item("small"), units=0.5)
    # a put charged 2 units on the table and 1 on the index
    contributors.accessed(table, item("put"), item=item("put", g="gx"), units=2.0, index_units={"byg": 1.0})
    # a put whose item the index does not hold (no units there): not ranked in it
    contributors.accessed(table, item("plain"), item=item("plain"), units=1.0, index_units={"byg": 0.0})
    contributors.accessed(table, item("nothing"), units=0.0)  # nothing consumed: nothing ranked
    for _ in range(2):
        contributors.throttled(table, item("small"), item=item("small", g="gx"))
    got = ranked(contributors, table)
    assert sorted(got[None, "PKC"], key=lambda entry: (-entry[1], entry[0])) == [
        (("S", "big"), 3.0), (("S", "put"), 2.0), (("S", "small"), 2.0), (("S", "plain"), 1.0)]
    assert got[None, "PKC"][0] == (("S", "big"), 3.0)
    assert got[None, "PKT"] == [(("S", "small"), 2.0)]  # events, whatever they would have cost
    assert got["byg", "PKC"] == [(("S", "gx"), 1.0)]
    assert got["byg", "PKT"] == [(("S", "gx"), 2.0)]
