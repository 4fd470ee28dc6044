"""DynamoDB actions, one module per group; ``ACTIONS`` maps each action name to its function."""

from . import account, items, tables, tags

ACTIONS = {**tables.ACTIONS, **items.ACTIONS, **tags.ACTIONS, **account.ACTIONS}
