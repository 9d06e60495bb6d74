"""Temporal workflows: one ``@workflow.defn`` per module, deterministic and import-light.

New kinds of case subclass :class:`workflows.case.CaseWorkflow` and compose its steps.
"""
