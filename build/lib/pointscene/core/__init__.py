"""What every app may import: nothing here imports an app (checked by import-linter)."""
