"""chatdock's benchmarks (``make bench``): the bot driven over HTTP exactly as Slack drives it, on the real engine.

Not tests: pytest never collects this package (``testpaths = ["tests"]``, and no file here is named ``test_*``).
"""
