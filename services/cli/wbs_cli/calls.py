"""How the `wbs` command reaches the services: one RPC through a standalone nameko proxy,
signed with the admin key where the service demands it. Kept apart from `main` so the command's
other modules (integrators) can call the services without importing the argument parser.
"""
import os


def amqp_uri() -> str:
    return os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")


# RPCs that act only on the admin key's signed command (wbs_plumbing.grants): the broker
# credentials of the wbs command are not enough on their own.
SIGNED = {("storage", "run_retention")} | {("verification", m) for m in (
    "add_unit", "add_staff", "set_staff_active", "revoke_sessions", "move_staff", "set_supervision",
    "set_unit_clocks", "seed_demo", "unlock_staff", "announce_directory",
    "unit_tree", "list_staff", "import_units", "import_staff", "reset_password", "reset_totp")}


def admin_command(method: str) -> str:
    """The admin key's signed command for ``method``: ``WBS_ADMIN_COMMAND_KEY_FILE`` (default
    ``<WBS_DATA_DIR>/command-admin.key``, generated for make run; a mounted secret in production,
    where a missing key stops the command)."""
    from wbs_plumbing.grants import CommandSigner
    config = {key: os.environ.get(key, "") for key in
              ("WBS_ENV", "WBS_DATA_DIR", "WBS_ADMIN_COMMAND_KEY_FILE")}
    return CommandSigner.from_config(config, "admin").issue(method)


def rpc_call(service: str, method: str, *args, timeout: float = 30, **kwargs):
    """One RPC call through a standalone nameko proxy (msgpack, as the services speak)."""
    if (service, method) in SIGNED:
        kwargs["command"] = admin_command(method)
    import eventlet
    eventlet.monkey_patch()
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": amqp_uri(), "serializer": "msgpack", "ACCEPT": ["msgpack", "json"]}
    with ClusterRpcProxy(config, timeout=timeout) as cluster:
        return getattr(getattr(cluster, service), method)(*args, **kwargs)
