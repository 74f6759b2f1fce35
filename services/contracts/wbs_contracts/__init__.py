"""The public contract between the WBS services and the systems that integrate with them.

Only metadata crosses these boundaries: event schemas forbid any property they do not name, so
a field carrying report content or reporter data cannot slip into an event unnoticed.
"""
