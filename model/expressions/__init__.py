"""DynamoDB's expression language: parse, validate, evaluate (no I/O).

    compile_expressions(...) -> Compiled    validate and bind one request's
                                            expressions (compile.py)
    Compiled.condition_matches / filter_matches / apply_update / project
    Compiled.bind_key_condition(key_schema) -> KeyCondition
    updated_attributes(item, names)         UPDATED_OLD / UPDATED_NEW values
    legacy                                  Expected, AttributeUpdates, ...
                                            as expressions (legacy.py)

Modules: ``tokens`` (lexer, syntax errors), ``parser`` (grammars), ``ast``
(trees), ``printer`` (trees to text), ``semantics`` (DynamoDB's checks, in
its order), ``evaluate`` (conditions), ``update``, ``projection``,
``key_condition``, ``reserved`` (reserved words).
"""

from .compile import Compiled, UpdatedNames, compile_expressions, updated_attributes
from .key_condition import KeyCondition

__all__ = ["Compiled", "KeyCondition", "UpdatedNames", "compile_expressions", "updated_attributes"]
