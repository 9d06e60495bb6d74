"""The console: the pages agents and supervisors work in, served by the API process."""
