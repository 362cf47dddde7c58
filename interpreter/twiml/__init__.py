"""TwiML documents: a hardened parser and a typed, immutable verb model.

Pure: no I/O. Imports only lxml and the standard library.

- ``parser``: :func:`parse` (raises the first :class:`TwimlError`) and :func:`validate`
  (returns every problem), sharing one reading of the document;
- ``document``: untrusted bytes or text to an lxml tree (size limit, decoding, no
  DOCTYPE, a parser that never resolves entities or touches the network);
- ``positions``: line and column of each start tag, which lxml does not give;
- ``verbs``: the model, frozen dataclasses with Twilio's defaults;
- ``attributes``: attribute value types (integers, booleans, methods, URLs ...);
- ``ssml``: the SSML accepted inside ``<Say>`` and how it flattens to text;
- ``errors``: :class:`TwimlError`, located by document name, line and column.
"""

from .errors import TwimlError
from .parser import parse, validate

__all__ = ["TwimlError", "parse", "validate"]
