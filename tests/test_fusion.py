"""Reciprocal-rank fusion: the one definition every search path uses."""

from __future__ import annotations

from services.retrieval.fusion import RRF_K, TIE_ALLOWANCE, fetch_size, fuse_pools, reciprocal_rank_fusion, through_ties
from services.retrieval.index.base import Hit


def test_each_appearance_adds_one_over_k_plus_its_rank() -> None:
    fused = dict(reciprocal_rank_fusion([[Hit("a", 0.9), Hit("b", 0.8)], [Hit("b", 7.0), Hit("c", 3.0)]]))
    assert fused == {"a": 1 / (RRF_K + 1), "b": 1 / (RRF_K + 2) + 1 / (RRF_K + 1), "c": 1 / (RRF_K + 2)}


def test_tied_hits_share_their_best_rank_whatever_order_the_store_gave() -> None:
    # Two copies of a section (say, in two versions) score alike in BM25; a store returns them
    # in either order, and the fusion must not care.
    dense = [Hit("v2", 0.71), Hit("other", 0.70), Hit("v1", 0.69)]
    one = reciprocal_rank_fusion([dense, [Hit("v1", 4.2), Hit("v2", 4.2), Hit("x", 1.0)]])
    other = reciprocal_rank_fusion([dense, [Hit("v2", 4.2), Hit("v1", 4.2), Hit("x", 1.0)]])
    assert one == other
    keyword_share = {cid: s for cid, s in reciprocal_rank_fusion([[Hit("v1", 4.2), Hit("v2", 4.2), Hit("x", 1.0)]])}
    assert keyword_share["v1"] == keyword_share["v2"] == 1 / (RRF_K + 1)
    assert keyword_share["x"] == 1 / (RRF_K + 3)  # after a tie of two, the next hit is third


def test_equal_fused_scores_are_ordered_by_chunk_id() -> None:
    assert [cid for cid, _ in reciprocal_rank_fusion([[Hit("b", 1.0)], [Hit("a", 1.0)]])] == ["a", "b"]


def test_a_pool_cut_inside_a_tie_keeps_the_whole_tie() -> None:
    ranking = [Hit("a", 3.0), Hit("b", 2.0), Hit("c", 2.0), Hit("d", 2.0), Hit("e", 1.0)]
    assert [h.chunk_id for h in through_ties(ranking, 2)] == ["a", "b", "c", "d"]
    assert [h.chunk_id for h in through_ties(ranking, 4)] == ["a", "b", "c", "d"]
    assert [h.chunk_id for h in through_ties(ranking, 1)] == ["a"]
    assert through_ties(ranking, 9) == ranking and through_ties(ranking, 0) == [] and through_ties([], 3) == []
    # Whichever two of the tie a store returned first, the fusion then sees the same hits.
    swapped = [Hit("a", 3.0), Hit("d", 2.0), Hit("c", 2.0), Hit("b", 2.0), Hit("e", 1.0)]
    assert reciprocal_rank_fusion([through_ties(ranking, 2)]) == reciprocal_rank_fusion([through_ties(swapped, 2)])
    # What every hybrid path does: fetch past the pool, then cut each ranking through its ties and fuse.
    assert fetch_size(40) == 40 + TIE_ALLOWANCE
    dense = [Hit("e", 0.9), Hit("a", 0.8)]
    assert fuse_pools([dense, ranking], 2) == reciprocal_rank_fusion([dense, ranking[:4]])
    assert fuse_pools([dense, ranking], 2) == fuse_pools([dense, swapped], 2)
