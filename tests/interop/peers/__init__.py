"""Real SIP peers for interop tests, and the audio measurements that judge them.

`sipp` runs SIPp scenarios (ours live in `tests/interop/scenarios/`), `baresip` drives
headless baresip user agents over ctrl_tcp, `tones` measures what a peer recorded, and
`ports` hands out loopback ports that parallel runs do not fight over.

These modules import only the standard library and numpy: they exercise our engine from
the outside, so they must never import `media/` or any other package of the project.
"""
