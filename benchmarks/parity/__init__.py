"""Update-level parity of our algorithms with their reference implementations (issue 33): one module per algorithm."""
