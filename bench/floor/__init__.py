"""The "minimal hop" reference rows (issue 14): the floor of any Python hop.

Each hop does the least a gateway can do and still be one: read the JSON body, change one field, forward
it through a pooled client to the upstream named in the `x-bench-upstream` header (an origin, like a
gateway's custom host), and relay the answer — buffered when the request did not ask for a stream, chunk
by chunk when it did. No auth, no config, no logging, no limits: whatever sluicegate spends above these
rows is the price of being a gateway rather than the price of being Python.

The four hops of issue 14 cross two servers (granian's RSGI in Rust, aiohttp's web server) with two
clients (pyreqwest on Rust's reqwest/hyper, aiohttp's client); a fifth runs granian + pyreqwest
through granian's ASGI interface, for the transport decision (docs/transport.md). They run in their own
venv (bench/.cache/floor-venv, from bench/floor/requirements.txt), never the project's.
"""
