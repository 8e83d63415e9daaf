"""Backups taken by other tools (Barman, barman-cloud, pgBackRest, a command, a team's own
files) and by pgvdrill itself, behind one interface (`base.Provider`); `registry.make`
builds one from its [provider.NAME] section."""
