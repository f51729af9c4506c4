from live.cli import entry

entry()
