"""The production commands: backups into a repository, restores, verification, retention,
off-site copies, schedules. Each module registers its subcommands in commands.py."""
