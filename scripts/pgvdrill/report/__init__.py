"""A run's reports: the run directory, report.json and its typed drill entries, and the views
written from it (Markdown, HTML, JUnit XML, Prometheus metrics, SVG charts)."""
