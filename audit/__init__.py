"""The auditor's toolkit: sealed archives of ticket histories, and replay that checks today's
code against them, command by command and decision by decision."""
