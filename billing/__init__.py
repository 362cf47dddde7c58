"""Rate decks and rating: exact decimal charges for the legs of calls and conferences.

The rater is pure (``(leg, deck) -> charge``); persistence goes through ``store``.
"""
