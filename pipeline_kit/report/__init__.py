"""What a release manager sees, from signed evidence only: the verified history (`history`), the
release report (`page`, one self-contained HTML file) and the numbers of delivery (`dora`)."""
