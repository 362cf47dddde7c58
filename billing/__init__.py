"""Rate decks and rating: exact decimal charges for the legs of calls and conferences.

The rater is pure (``(leg, deck) -> charge``: `deck`, `e164`, `rater`, `ratefile`);
`charging` (rating stored legs exactly once, re-rating), `bill`, `cdr` and `tariffs`
(importing and assigning decks) are its shell. May import `store` only; imported by
`calls`, `worker` and `manage.py`.
"""
