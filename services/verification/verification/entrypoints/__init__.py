"""verification's entrypoints, grouped by who calls them, as mixins over one set of dependencies.

* ``events``: intake's and storage's events, and the deadline timer (workers);
* ``service_rpc``: RPCs other services call (intake: the reporter's status; notification:
  who to tell) (workers);
* ``admin_rpc``: the ``wbs`` command's directory and audit RPCs (workers);
* ``inspector_api``: the JSON API under ``/api/v1`` (web);
* ``console``: the HTML console (web).

Each entrypoint parses its input, calls one use case (``cases``, ``assignment``,
``directory``, ``casefile``) and shapes the answer (``web``). The nameko services that combine
them are ``verification.service`` (everything, one process), ``verification.web_tier`` and
``verification.worker_tier``: all three are named ``verification``, so callers see one service
however it is deployed.
"""
