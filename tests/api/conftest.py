"""pytest 9 keeps a node's id as `Node._id` (a `NodeId`); Schemathesis's lazy `from_fixture`
schemas still rename their per-operation subtests through the old `_nodeid` attribute. This
gives it that attribute back, and does nothing once pytest or Schemathesis has one again."""

from _pytest.nodeid import NodeId
from _pytest.nodes import Node

if not hasattr(Node, "_nodeid"):
    Node._nodeid = property(
        lambda node: str(node._id),
        lambda node, value: setattr(node, "_id", NodeId.parse(value)),
    )
