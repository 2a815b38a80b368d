"""Acceptance bookkeeping shared by the speculative methods (one definition for all).

A round is one target forward that verifies draft proposals (linear, hf_assisted and pld
encode the prompt inside their first round; tree and dynatree prefill first, in a forward that
verifies nothing and is no round). Per round a method records ``proposed`` (draft tokens
submitted to verification; for a tree, its node count), ``accepted`` (draft tokens committed,
excluding the target's own token) and ``depth`` (the longest draft path proposed). The forward
counters of ``methods.counting_forwards`` add, per round, the tokens fed to the target
(``verify_tokens``: the verification's width, prompt included in a first round that encodes it)
and the draft forwards and tokens fed since the previous round.

``round_stats`` turns the rounds into the record fields of the result schema:

- ``acceptance_rate`` = sum(accepted) / sum(proposed), within [0, 1]. Family-specific: a
  chain proposes K per round, a tree all its nodes, so a tree's rate is lower for the same
  accepted length; never rank families on it (tokens per target forward is the cross-family
  metric, see the harness);
- ``tokens_per_round`` = mean(accepted) + 1;
- ``acceptance_by_depth[d]`` = rounds whose accepted path reached depth d+1 / rounds that
  proposed depth d+1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Round:
    proposed: int
    accepted: int
    depth: int
    verify_tokens: int | None = None  # tokens fed to the target's verification forward
    draft_forwards: int | None = None  # draft forwards of this round
    draft_tokens_fed: int | None = None  # tokens fed to the draft in this round

    def __post_init__(self):
        if not 0 <= self.accepted <= min(self.proposed, self.depth):
            raise ValueError(f"accepted={self.accepted} must be within 0..min(proposed={self.proposed}, "
                             f"depth={self.depth})")


def round_stats(rounds: list[Round]) -> dict:
    proposed = sum(r.proposed for r in rounds)
    accepted = sum(r.accepted for r in rounds)
    max_depth = max((r.depth for r in rounds), default=0)
    by_depth = []
    for d in range(1, max_depth + 1):
        reached = [r for r in rounds if r.depth >= d]
        by_depth.append(sum(r.accepted >= d for r in reached) / len(reached) if reached else None)
    out = {
        "rounds": len(rounds),
        "draft_tokens_proposed": proposed,
        "draft_tokens_accepted": accepted,
        "proposed_per_round": [r.proposed for r in rounds],
        "accepted_per_round": [r.accepted for r in rounds],
        "acceptance_rate": accepted / proposed if proposed else None,
        "tokens_per_round": accepted / len(rounds) + 1 if rounds else None,
        "acceptance_by_depth": by_depth,
    }
    for name in ("verify_tokens", "draft_forwards", "draft_tokens_fed"):
        values = [getattr(r, name) for r in rounds]
        if rounds and all(v is not None for v in values):
            out[f"{name}_per_round"] = values
    return out
