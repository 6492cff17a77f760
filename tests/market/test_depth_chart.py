"""The depth chart's cumulative steps of a book snapshot."""

from __future__ import annotations

from wattx.market.depth import BookDepth, DepthLevel, DepthStep, cumulative_depth


def test_cumulative_depth_adds_up_from_the_best_price_of_each_side() -> None:
    depth = BookDepth(
        zone="z",
        epoch_id=1,
        bids=[DepthLevel(100, 1_000, 1), DepthLevel(90, 500, 2)],
        asks=[DepthLevel(120, 2_000, 1), DepthLevel(130, 250, 1)],
    )
    assert cumulative_depth(depth) == [
        DepthStep(90, 1_500, None),
        DepthStep(100, 1_000, None),
        DepthStep(120, None, 2_000),
        DepthStep(130, None, 2_250),
    ]
    assert cumulative_depth(BookDepth("z", 1, [], [])) == []
    # Overlapping spans (a call auction's book may cross): both sides at the shared prices.
    crossed = BookDepth("z", 1, [DepthLevel(110, 300, 1)], [DepthLevel(100, 200, 1)])
    assert cumulative_depth(crossed) == [DepthStep(100, None, 200), DepthStep(110, 300, None)]
