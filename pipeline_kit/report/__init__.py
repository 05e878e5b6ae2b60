"""What a release manager sees, from signed evidence only: the verified history (`history`), the
release report (`page` with `sections`, `svg` and `plans`: one self-contained HTML file), the
numbers of delivery (`dora`), and the job summaries' Mermaid pictures (`pictures`, `mermaid`)."""
