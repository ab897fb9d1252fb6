"""A user namespace's maps as the model keeps them: looked up per range, written out as the
kernel reads them, and kept in a state record (also one an earlier ctr wrote)."""

from __future__ import annotations

import pytest

from supervisor.model.errors import Invalid
from supervisor.model.idmap import IdMap, id_map

KEEP_ID = [(0, 100000, 1000), (1000, 1000, 1), (1001, 101001, 64535)]


def test_each_id_is_looked_up_in_its_own_range() -> None:
    ids = id_map(KEEP_ID, [(0, 300000, 65536)])
    assert [ids.host_uid(n) for n in (0, 999, 1000, 1001, 65535, 65536)] == \
        [100000, 100999, 1000, 101001, 165535, None]
    assert ids.root == (100000, 300000)
    assert str(ids) == "uids 0:100000:1000,1000:1000:1,1001:101001:64535, gids 0:300000:65536"


def test_the_order_given_does_not_matter() -> None:
    assert id_map(reversed(KEEP_ID), KEEP_ID) == id_map(KEEP_ID, KEEP_ID)


def test_a_state_record_keeps_the_maps() -> None:
    ids = id_map(KEEP_ID, [(0, 300000, 65536)])
    assert IdMap.from_record(ids.to_record()) == ids
    assert IdMap.from_record({"base": 524288, "size": 65536}) == IdMap.one_range(524288, 65536)


@pytest.mark.parametrize(("uids", "at", "reason"), [
    ([], ("uids",), "no range given"),
    ([(0, 1, 1), (1, 1, 1)], ("uids", 1), "its host ids overlap those of range 0 (0:1:1)"),
    ([(5, 10, 5), (0, 20, 6)], ("uids", 1), "its container ids overlap those of range 0"),
    ([(0, 1, 0)], ("uids", 0), "the range 0:1:0 is empty"),
    ([(1, 1, 1)], ("uids",), "container id 0 is not mapped"),
])
def test_a_bad_map_is_located(uids: list[tuple[int, int, int]], at: tuple[object, ...],
                              reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        id_map(uids, KEEP_ID)
    assert caught.value.at == at and str(caught.value).startswith(reason)
