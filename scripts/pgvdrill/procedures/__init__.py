"""Drilling procedures: a team's own backup, archive and restore commands ([[procedure]]
templates in the configuration) and the built-in runbook pack, run on throw-away servers,
each step judged works, fails or unsafe from what it did (`pgvdrill procedures`)."""
