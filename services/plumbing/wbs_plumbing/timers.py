"""A nameko ``@timer`` whose interval comes from config.

Why: sweeps (notification's mail retries, verification's deadline check, storage's daily
retention run) tick every few seconds, minutes or hours in production but must tick fast in
tests; nameko's own timer takes its interval only at decoration time.
"""
from __future__ import annotations

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    def __init__(self, interval, config_key=None, **kwargs):
        self.config_key = config_key
        super().__init__(interval, **kwargs)

    def setup(self):
        super().setup()
        if self.config_key:
            value = self.container.config.get(self.config_key)
            if value not in (None, ""):
                self.interval = float(value)


configured_timer = ConfiguredTimer.decorator
