"""Prompt lookup decoding: transformers' ``generate(prompt_lookup_num_tokens=N, do_sample=False)``.

No draft model. Each round transformers' ``PromptLookupCandidateGenerator`` takes the last
n-gram of the sequence (n = ``max_matching_ngram_size`` down to 1), finds its first earlier
occurrence in prompt + generated text, and proposes the up to ``num_tokens`` tokens that
followed it (cut before an EOS when EOS is enabled); with no match it proposes nothing and the
round is a plain target step. The target verifies the candidates in one forward and commits
the matching prefix plus its own next token, so output ids equal greedy AR's.

Parameters: ``num_tokens`` (default 10; transformers' ``prompt_lookup_num_tokens``),
``max_matching_ngram_size`` (default 2).

Budget, first-token mark, and per-round statistics exactly as in ``hf_assisted`` (shared code):
proposed = depth = candidates looked up (0 in rounds without a match), accepted = candidates
committed; the draft phase is the lookup, the verify phase the target forward and acceptance.
"""

from __future__ import annotations

from ..method_params import PLDParams  # noqa: F401 (the method's parameters, declared there)
from .base import GenContext, GenerationOutput
from .hf_assisted import hf_generate


def generate(ctx: GenContext) -> GenerationOutput:
    p = ctx.params
    return hf_generate(ctx, prompt_lookup_num_tokens=p.num_tokens,
                       max_matching_ngram_size=p.max_matching_ngram_size)
