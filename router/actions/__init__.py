"""DynamoDB actions, one module per group; ``ACTIONS`` maps each action name to its function,
``STREAM_ACTIONS`` each DynamoDB Streams action's, ``DAX_ACTIONS`` each DAX control-plane action's."""

from . import account, backups, batch, global_tables, items, streams, tables, tags, ttl

ACTIONS = {**tables.ACTIONS, **items.ACTIONS, **batch.ACTIONS, **tags.ACTIONS, **account.ACTIONS, **global_tables.ACTIONS,
           **ttl.ACTIONS, **backups.ACTIONS}

from . import query_scan  # noqa: E402

ACTIONS.update(query_scan.ACTIONS)

from . import contributor_insights, partiql, transact  # noqa: E402

ACTIONS.update(transact.ACTIONS)
ACTIONS.update(partiql.ACTIONS)
ACTIONS.update(contributor_insights.ACTIONS)

from . import exports, resource_policies  # noqa: E402

ACTIONS.update(exports.ACTIONS)
ACTIONS.update(resource_policies.ACTIONS)

#: The DynamoDB Streams API (``DynamoDBStreams_20120810.<Action>``), served on the same endpoint.
STREAM_ACTIONS = dict(streams.ACTIONS)

from . import dax_control  # noqa: E402

#: The DAX control plane (``AmazonDAXV3.<Action>``, JSON 1.1), served on the same endpoint.
DAX_ACTIONS = dict(dax_control.ACTIONS)
