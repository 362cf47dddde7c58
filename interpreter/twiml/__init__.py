"""TwiML documents: a hardened parser and a typed, immutable verb model.

Pure: no I/O. Imports only lxml and the standard library.
"""
