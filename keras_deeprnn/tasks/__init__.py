"""The paper's two tasks behind one interface: music and language modelling.

| task | data | measure | sampling |
| --- | --- | --- | --- |
| `"music"` (`MusicTask`) | 88-key piano rolls | NLL per frame (nats) | `sample_piece` |
| `"lm"` (`LanguageModelTask`) | character or word streams | bits per token | `sample_text` |

Training (`keras_deeprnn.training`) and the tuner take their task from here:

```python
from keras_deeprnn.tasks import get_task

task = get_task("music")
data = task.load_data(config)
batches = task.batches(data["train"], config, training=True)
```

A new task is one subclass of `Task` and one `register` call, in any file:
the command line (`train`, `evaluate`, `generate`, `tune --task NAME`), the
training loop and the tuner then take it as they take the two above, its
settings as flags (see `Task`; `tests/tasks/test_toy_task.py` is a whole example).
"""

from keras_deeprnn.tasks import paper
from keras_deeprnn.tasks.base import TASKS
from keras_deeprnn.tasks.base import Task
from keras_deeprnn.tasks.base import get_task
from keras_deeprnn.tasks.base import register
from keras_deeprnn.tasks.language import LanguageModelTask
from keras_deeprnn.tasks.music import FrameNLLLoss
from keras_deeprnn.tasks.music import MusicTask

register(MusicTask())
register(LanguageModelTask())

__all__ = ["TASKS", "Task", "get_task", "register", "MusicTask", "LanguageModelTask",
           "FrameNLLLoss", "paper"]
