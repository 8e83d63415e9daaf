"""What counts as good enough: the documented targets, the verdicts on measured figures,
and the --fail-on policy that turns them into an exit code."""
