"""DynamoDB actions, one module per group; ``ACTIONS`` maps each action name to its function."""

from . import account, batch, global_tables, items, tables, tags, ttl

ACTIONS = {**tables.ACTIONS, **items.ACTIONS, **batch.ACTIONS, **tags.ACTIONS, **account.ACTIONS, **global_tables.ACTIONS,
           **ttl.ACTIONS}

from . import query_scan  # noqa: E402

ACTIONS.update(query_scan.ACTIONS)
