"""Pareto frontier of (cost, quality) points: lower cost and higher quality are better.

A point is on the frontier when no other point is at least as good on both axes and strictly better on one.
Points with a missing (None or NaN) coordinate take no part.
"""
from __future__ import annotations

import math


def _usable(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def pareto_frontier(points) -> list[int]:
    """Indices of the non-dominated points of ``points`` = [(cost, quality), ...], sorted by increasing cost.

    Example: ``pareto_frontier([(1, 1.0), (2, 3.0), (3, 2.0), (4, 4.0)]) == [0, 1, 3]`` ((3, 2.0) is dominated
    by (2, 3.0): cheaper and better).
    """
    candidates = [(float(cost), float(quality), index) for index, (cost, quality) in enumerate(points)
                  if _usable(cost) and _usable(quality)]
    frontier = []
    for cost, quality, index in candidates:
        dominated = any(
            other_cost <= cost and other_quality >= quality and (other_cost < cost or other_quality > quality)
            for other_cost, other_quality, other in candidates if other != index
        )
        if not dominated:
            frontier.append((cost, -quality, index))
    return [index for _, _, index in sorted(frontier)]
