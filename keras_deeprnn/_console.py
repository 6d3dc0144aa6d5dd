"""How warnings reach a person at the command line: one line each.

Python shows a warning as two lines, the file and line of the code that
raised it and that line's source, which say nothing to someone running
`keras-deeprnn`. Inside `one_line_warnings(prefix)` each is one line on
stderr, `"{prefix}: warning: {message}"`, and shown as often as Python's
filters say (once per place, by default); outside, nothing changes.

Example:

```python
with one_line_warnings("keras-deeprnn train"):
    result = training.train(config)
# keras-deeprnn train: warning: Resuming 'runs/srnn' from epoch 3 (state.previous.json) ...
```
"""

import contextlib
import sys
import warnings


@contextlib.contextmanager
def one_line_warnings(prefix):
    """Show every warning raised inside as one line, `"{prefix}: warning: {message}"`."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"{prefix}: warning: {text}", file=file or sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
